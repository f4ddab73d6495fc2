import type { FastifyReply } from 'fastify'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { DatasetTooLargeError, parametersFromQuery, planDataset, WindowTooLongError, type DatasetPlan } from '../datasets/dataset-plan.js'
import { writeDataset } from '../datasets/dataset-writer.js'
import { sessionLabelSource } from '../datasets/label-source.js'
import { userNaming } from '../datasets/pseudonyms.js'
import { ZipDatasetSink } from '../datasets/zip-sink.js'
import { DatasetConnection } from '../db/readings/dataset-readings.js'
import { ExportPoolBusyError } from '../db/export-pool.js'
import { AppError } from '../errors.js'
import { PerUserExportLimit } from '../export-limit.js'
import { SessionLabels } from '../labels/session-labels.js'
import { datasetExportQuery } from '../schemas/datasets.js'
import { watchForStall } from '../stream-stall.js'
import { SERVICE_VERSION } from '../version.js'

export interface DatasetRoutesOptions {
  /** A download whose reader takes nothing for this long is aborted and its connection freed. */
  exportIdleTimeoutMs: number
  /** Dataset exports this instance runs at once, all users together. */
  maxRunning: number
  /** Key of the users' pseudonyms (DATASET_PSEUDONYM_KEY); unset: drawn anew for each export. */
  pseudonymKey?: string | undefined
}

const RETRY_AFTER_SECONDS = 5

function refuse (reply: FastifyReply, statusCode: 429 | 503, error: string, message: string) {
  return reply.code(statusCode).header('retry-after', String(RETRY_AFTER_SECONDS)).send({ error, message })
}

function describeExcluded (plan: DatasetPlan): string {
  const reasons = Object.entries(plan.excluded).filter(([, ids]) => ids.length > 0).map(([reason, ids]) => `${ids.length} ${reason.replaceAll('_', ' ')}`)
  return reasons.length > 0 ? ` (left out: ${reasons.join(', ')})` : ''
}

/**
 * GET /datasets/export (admin): the matching sessions as one zip, streamed
 * as it is built: a data file per session, labels.csv, then manifest.json.
 *
 * What it does to everyone else: it reads on one connection of the export
 * pool (never the service's, so ingest, auth and /health keep theirs), one
 * session after another; each admin runs one at a time (429), and this
 * instance at most `maxRunning` (503), half the export pool, so CSV
 * downloads keep connections of their own. A reader that stops reading for
 * the idle timeout, or goes away, ends the export and its connection.
 */
const datasetsRoutes: FastifyPluginAsyncZod<DatasetRoutesOptions> = async (fastify, options) => {
  const perUser = new PerUserExportLimit(1)
  const running = new Set<AbortController>()
  const labels = sessionLabelSource(new SessionLabels(fastify.db))
  // Shutdown ends running exports rather than wait for their readers.
  fastify.addHook('preClose', async () => {
    for (const controller of running) controller.abort(new Error('The service is shutting down'))
  })

  fastify.get('/datasets/export', {
    onRequest: fastify.requireRole('ADMIN'),
    // A HEAD would build the whole dataset only to discard it.
    exposeHeadRoute: false,
    schema: {
      tags: ['datasets'],
      summary: 'A training set of the matching sessions as one zip: a file per session in the asked layout and format, labels.csv and manifest.json (admin)',
      // No response schema: the body is a stream, and errors use the shared error shape.
      querystring: datasetExportQuery
    }
  }, async (request, reply) => {
    const auth = request.auth as NonNullable<typeof request.auth>
    const releaseSlot = perUser.tryAcquire(auth.userId)
    if (!releaseSlot) return refuse(reply, 429, 'TOO_MANY_EXPORTS', 'A dataset export of yours is running; retry when it has finished')
    if (running.size >= options.maxRunning) {
      releaseSlot()
      return refuse(reply, 503, 'EXPORTS_BUSY', `${running.size} dataset exports are running, the most this instance runs at once; retry shortly`)
    }
    const controller = new AbortController()
    running.add(controller)
    const done = () => {
      running.delete(controller)
      releaseSlot()
    }
    let plan: DatasetPlan
    let connection: DatasetConnection
    try {
      plan = await planDataset({
        db: fastify.db,
        reportOf: async id => {
          const result = await fastify.reports.report(id)
          return result.status === 'ready' ? result.report : null
        },
        labels
      }, parametersFromQuery(request.query))
      if (plan.sessions.length === 0) throw new AppError(404, 'NO_MATCHING_SESSIONS', `No ended session matches${describeExcluded(plan)}`)
      connection = await DatasetConnection.open(fastify.exportPool, request.log)
    } catch (err) {
      done()
      if (err instanceof ExportPoolBusyError) return refuse(reply, 503, 'EXPORTS_BUSY', 'Every export connection is in use; retry shortly')
      if (err instanceof DatasetTooLargeError || err instanceof WindowTooLongError) throw new AppError(400, err.code, err.message)
      throw err
    }

    const sink = new ZipDatasetSink(controller.signal)
    const output = sink.output
    let finished = false
    const stop = (reason: string) => {
      if (finished || controller.signal.aborted) return
      request.log.warn({ reason }, 'Dataset export stopped.')
      controller.abort(new Error(reason))
      // Whatever COPY is running ends with its connection.
      connection.destroy()
      output.destroy()
    }
    output.once('close', () => stop('the download was closed before its end'))
    watchForStall(output, options.exportIdleTimeoutMs, () => stop('its reader took nothing for the idle timeout'))
    const naming = userNaming({ realIds: request.query.realUserIds, key: options.pseudonymKey })
    writeDataset(plan, {
      source: connection,
      sink,
      naming,
      service: { name: 'motion-ingest', version: SERVICE_VERSION },
      signal: controller.signal
    }).then(manifest => {
      finished = true
      sink.end()
      request.log.info({ sessions: manifest.totals.sessions, rows: manifest.totals.rows, bytes: manifest.totals.bytes }, 'Dataset exported.')
    }, (err: unknown) => {
      if (!controller.signal.aborted) request.log.error({ err }, 'Dataset export failed.')
      stop('it failed')
      output.destroy()
    }).finally(async () => {
      await connection.release()
      done()
    })
    const stamp = new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)
    return reply
      .type('application/zip')
      .header('content-disposition', `attachment; filename="dataset-${stamp}.zip"`)
      .send(output)
  })
}

export default datasetsRoutes
