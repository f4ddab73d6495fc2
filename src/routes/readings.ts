import type { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest, FastifySerializerCompiler } from 'fastify'
import { serializerCompiler, type FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { ExportPoolBusyError } from '../db/export-pool.js'
import { openReadingsCsv } from '../db/readings/readings-export.js'
import { findReadingsPage } from '../db/readings/readings-repository.js'
import type { PerUserExportLimit } from '../export-limit.js'
import { refuseExport } from './export-refusal.js'
import { errorResponse, idParam } from '../schemas/common.js'
import { encodeReadingsCursor, readingsPage, readingsQuery, stringifyReadingsPage, type ReadingsPageOutput } from '../schemas/readings.js'
import { findVisibleSession } from './session-access.js'

export interface ReadingsRoutesOptions {
  /** The user's export slots, shared by every download route: past them, 429. */
  exportLimit: PerUserExportLimit
  /** A CSV download whose reader takes nothing for this long is aborted and its connection freed. */
  exportIdleTimeoutMs: number
}

/** The zod serializers, except that a page keeps an axis of -0 (JSON.stringify writes 0; the CSV keeps the sign). */
const readingsPageSerializer: FastifySerializerCompiler<unknown> = route => {
  if (route.httpStatus === '200') return (data: unknown) => stringifyReadingsPage(readingsPage.encode(data as ReadingsPageOutput))
  return serializerCompiler(route as Parameters<typeof serializerCompiler>[0])
}

/**
 * The read path's exports share two limits, so that however many downloads
 * stall, ingest, auth and /health keep their connections: a per-user count
 * (429), and the export pool's few connections, apart from the service's
 * pool (503 once none comes free within EXPORT_POOL_WAIT_MS).
 */
const readingsRoutes: FastifyPluginAsyncZod<ReadingsRoutesOptions> = async (fastify, options) => {
  const perUser = options.exportLimit
  const runningDownloads = new Set<Readable>()
  // A download's reader may never finish; shutdown ends the downloads rather than wait for
  // them (the export pool would keep close() waiting until their idle timeout).
  fastify.addHook('preClose', async () => {
    for (const download of runningDownloads) download.destroy()
  })

  /** One of the caller's export slots, or undefined once the refusal is sent. */
  function claimExportSlot (request: FastifyRequest, reply: FastifyReply): (() => void) | undefined {
    const release = perUser.tryAcquire((request.auth as NonNullable<typeof request.auth>).userId)
    if (!release) {
      refuseExport(reply, 429, 'TOO_MANY_EXPORTS',
        `At most ${perUser.maxPerUser} exports per user may run at once; retry when one has finished`)
    }
    return release
  }

  const exportsBusy = (reply: FastifyReply) =>
    refuseExport(reply, 503, 'EXPORTS_BUSY', 'Every export connection is in use; retry shortly')

  fastify.get('/sessions/:id/readings', {
    onRequest: fastify.authenticate,
    schema: {
      tags: ['readings'],
      summary: 'A page of a session\'s readings in time order (owner or admin)',
      params: idParam,
      querystring: readingsQuery,
      response: { 200: readingsPage, 400: errorResponse, 404: errorResponse, 429: errorResponse, 503: errorResponse }
    },
    serializerCompiler: readingsPageSerializer
  }, async (request, reply) => {
    const { id } = request.params
    const release = claimExportSlot(request, reply)
    if (!release) return reply
    try {
      await findVisibleSession(fastify.db, request.auth, id)
      const page = await findReadingsPage(fastify.exportPool, id, request.query)
      return { items: page.items, nextCursor: page.next && encodeReadingsCursor(page.next), take: request.query.take }
    } catch (err) {
      if (err instanceof ExportPoolBusyError) return exportsBusy(reply)
      throw err
    } finally {
      release()
    }
  })

  fastify.get('/sessions/:id/readings.csv', {
    onRequest: fastify.authenticate,
    // A HEAD would run the whole COPY only to discard it.
    exposeHeadRoute: false,
    schema: {
      tags: ['readings'],
      summary: 'The whole session as CSV `timestamp,sensor,x,y,z`, streamed (owner or admin)',
      // No response schema: the body is a stream, and errors use the shared error shape.
      params: idParam
    }
  }, async (request, reply) => {
    const { id } = request.params
    const release = claimExportSlot(request, reply)
    if (!release) return reply
    try {
      await findVisibleSession(fastify.db, request.auth, id)
      const csv = await openReadingsCsv(fastify.exportPool, id, { logger: request.log, idleTimeoutMs: options.exportIdleTimeoutMs })
      runningDownloads.add(csv)
      // The slot is the user's for as long as the stream holds its connection: to its end, an error, or an abort.
      csv.once('close', () => {
        runningDownloads.delete(csv)
        release()
      })
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="session-${id}.csv"`)
        .send(csv)
    } catch (err) {
      release()
      if (err instanceof ExportPoolBusyError) return exportsBusy(reply)
      throw err
    }
  })
}

export default readingsRoutes
