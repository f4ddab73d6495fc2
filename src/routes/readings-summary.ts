import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { ExportPoolBusyError } from '../db/export-pool.js'
import { summarizeReadings } from '../db/readings/readings-summary.js'
import { AppError } from '../errors.js'
import { PerUserExportLimit } from '../export-limit.js'
import { errorResponse, idParam } from '../schemas/common.js'
import { readingsSummary, readingsSummaryQuery } from '../schemas/readings-summary.js'
import { findVisibleSession } from './session-access.js'

export interface ReadingsSummaryRoutesOptions {
  /** Summaries one user may run at once; past it, 429. */
  maxPerUser: number
  /** A summary running longer is cancelled (503 SUMMARY_TIMEOUT). */
  timeoutMs: number
}

const RETRY_AFTER_SECONDS = 2

/**
 * GET /sessions/:id/readings/summary: what a plot of the session draws. It
 * reads every reading of the range once, so it runs on the export pool:
 * however many people zoom at once, they hold at most EXPORT_POOL_MAX
 * connections and never one that ingest or auth needs.
 */
const readingsSummaryRoutes: FastifyPluginAsyncZod<ReadingsSummaryRoutesOptions> = async (fastify, options) => {
  const perUser = new PerUserExportLimit(options.maxPerUser)

  fastify.get('/sessions/:id/readings/summary', {
    onRequest: fastify.authenticate,
    schema: {
      tags: ['readings'],
      summary: 'Min and max of each axis per time bucket and sensor, and where the gaps are: a plot of any size of session (owner or admin)',
      description: 'One pass over the range\'s readings in SQL (time_bucket on TimescaleDB, date_bin on PostgreSQL). Ask for about as many buckets as ' +
        'the plot is wide in pixels; zooming asks again with the visible from/to. A bucket with one reading has min = max: zoomed in far enough, the answer is the signal itself.',
      params: idParam,
      querystring: readingsSummaryQuery,
      response: { 200: readingsSummary, 400: errorResponse, 404: errorResponse, 429: errorResponse, 503: errorResponse }
    }
  }, async (request, reply) => {
    const { id } = request.params
    const release = perUser.tryAcquire((request.auth as NonNullable<typeof request.auth>).userId)
    if (!release) {
      return reply.code(429).header('retry-after', String(RETRY_AFTER_SECONDS))
        .send({ error: 'TOO_MANY_SUMMARIES', message: `At most ${perUser.maxPerUser} summaries per user may run at once` })
    }
    try {
      await findVisibleSession(fastify.db, request.auth, id)
      const summary = await summarizeReadings(fastify.exportPool, id, request.query, {
        timescaledb: fastify.storage.readingsHypertable,
        timeoutMs: options.timeoutMs
      })
      return { sessionId: id, ...summary }
    } catch (err) {
      if (err instanceof ExportPoolBusyError) {
        return reply.code(503).header('retry-after', String(RETRY_AFTER_SECONDS))
          .send({ error: 'EXPORTS_BUSY', message: 'Every export connection is in use; retry shortly' })
      }
      if ((err as { code?: string }).code === '57014') {
        throw new AppError(503, 'SUMMARY_TIMEOUT', `The summary of session ${id} took longer than ${options.timeoutMs} ms; ask for a narrower range`)
      }
      throw err
    } finally {
      release()
    }
  })
}

export default readingsSummaryRoutes
