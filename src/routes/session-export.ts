import { PassThrough, Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { sessionLabelSource } from '../datasets/label-source.js'
import { WindowTooLongError } from '../datasets/dataset-plan.js'
import { planSessionFile, sessionFileContent, type SessionFilePlan } from '../datasets/session-file.js'
import { DatasetConnection } from '../db/readings/dataset-readings.js'
import { isStatementTimeout } from '../db/errors.js'
import { ExportPoolBusyError } from '../db/export-pool.js'
import { AppError, conflict, notFound } from '../errors.js'
import type { PerUserExportLimit } from '../export-limit.js'
import { refuseExport } from './export-refusal.js'
import { SessionLabels } from '../labels/session-labels.js'
import { idParam } from '../schemas/common.js'
import { sessionExportQuery } from '../schemas/datasets.js'
import { watchForStall } from '../stream-stall.js'
import { SERVICE_VERSION } from '../version.js'
import { findVisibleSession } from './session-access.js'

export interface SessionExportRoutesOptions {
  /** The user's export slots, shared by every download route: past them, 429. */
  exportLimit: PerUserExportLimit
  /** A download whose reader takes nothing for this long is aborted and its connection freed. */
  exportIdleTimeoutMs: number
}

/** The refusal for a session that has no file to give; undefined when it has one. */
function refusalOf (result: SessionFilePlan, id: number): AppError | undefined {
  switch (result.status) {
    case 'ready': return undefined
    case 'not-ended': return notFound(`Session ${id} does not exist`)
    case 'no-report': return new AppError(503, 'REPORT_TIMEOUT', `The report of session ${id}, which its grid is built from, could not be computed now; try again later`)
    case 'no-readings': return new AppError(409, 'NO_READINGS', `Session ${id} has no readings to lay out`)
    case 'window-too-long': return new AppError(400, 'WINDOW_TOO_LONG', new WindowTooLongError(result.samples).message)
  }
}

/**
 * GET /sessions/:id/export (owner or admin): one session's file in a
 * training set's layout and format, built by the dataset export's own code
 * (docs/datasets.md), so a file downloaded here is the one an export of the
 * session holds. It keeps the CSV download's limits: the user's export
 * slots (429), one connection of the export pool (503 when none comes
 * free), and the idle timeout that ends a download nobody reads.
 */
const sessionExportRoutes: FastifyPluginAsyncZod<SessionExportRoutesOptions> = async (fastify, options) => {
  const perUser = options.exportLimit
  const labels = sessionLabelSource(new SessionLabels(fastify.db))
  const running = new Set<() => void>()
  // Shutdown ends running downloads rather than wait for their readers.
  fastify.addHook('preClose', async () => {
    for (const stop of running) stop()
  })

  fastify.get('/sessions/:id/export', {
    onRequest: fastify.authenticate,
    // A HEAD would build the whole file only to discard it.
    exposeHeadRoute: false,
    schema: {
      tags: ['readings'],
      summary: 'One ended session as a training-set file: long, wide (a fixed grid) or windows; CSV or Parquet, streamed (owner or admin)',
      // No response schema: the body is a stream, and errors use the shared error shape.
      params: idParam,
      querystring: sessionExportQuery
    }
  }, async (request, reply) => {
    const { id } = request.params
    const release = perUser.tryAcquire((request.auth as NonNullable<typeof request.auth>).userId)
    if (!release) {
      return refuseExport(reply, 429, 'TOO_MANY_EXPORTS', `At most ${perUser.maxPerUser} exports per user may run at once; retry when one has finished`)
    }
    let connection: DatasetConnection
    let planned: Extract<SessionFilePlan, { status: 'ready' }>
    try {
      const session = await findVisibleSession(fastify.db, request.auth, id)
      if (!session.destroyedAt) throw conflict(`Session ${id} is still recording; its file is laid out when it ends (readings.csv has what it has so far)`)
      const result = await planSessionFile({
        db: fastify.db,
        reportOf: async sessionId => {
          const report = await fastify.reports.report(sessionId).catch((err: unknown) => {
            if (isStatementTimeout(err)) return null
            throw err
          })
          return report?.status === 'ready' ? report.report : null
        },
        labels
      }, id, request.query)
      const refusal = refusalOf(result, id)
      if (refusal) throw refusal
      planned = result as typeof planned
      connection = await DatasetConnection.open(fastify.exportPool, request.log)
    } catch (err) {
      release()
      if (err instanceof ExportPoolBusyError) return refuseExport(reply, 503, 'EXPORTS_BUSY', 'Every export connection is in use; retry shortly')
      throw err
    }

    // Between the content and the response, so that a download cut short is seen at once (the
    // content's own stream closes only once its generator has stopped).
    const output = new PassThrough()
    /** Every byte is in `output`, and the connection is done with. */
    let finished = false
    let stopReason: string | undefined
    const stop = (reason: string) => {
      if (stopReason !== undefined) return
      stopReason = reason
      // Whatever COPY is running ends with its connection.
      if (!finished) connection.destroy()
      output.destroy()
    }
    const stopOnShutdown = () => stop('the service is shutting down')
    running.add(stopOnShutdown)
    // Destroyed by the response when the client goes away; one the pipeline failed carries its error.
    output.once('close', () => {
      if (!finished && !output.errored) stop('the download was closed before its end')
    })
    watchForStall(output, options.exportIdleTimeoutMs, () => stop('its reader took nothing for the idle timeout'))
    const content = sessionFileContent(connection, planned, `motion-ingest ${SERVICE_VERSION}`)
    const { layout, format } = planned.plan.parameters
    pipeline(Readable.from(content.bytes, { objectMode: false }), output).then(() => {
      finished = true
      request.log.info({ sessionId: id, layout, format, rows: content.stats.rows }, 'Session exported.')
    }, (err: unknown) => {
      if (stopReason === undefined) request.log.error({ err, sessionId: id }, 'Session export failed.')
      else request.log.warn({ sessionId: id, reason: stopReason }, 'Session export stopped.')
      stop('it failed')
    }).finally(() => {
      running.delete(stopOnShutdown)
      // The slot goes back as the last byte is handed on, before the client sees the end, so a
      // script's next download is not refused; the connection follows once its commit is done.
      release()
      return connection.release()
    })
    return reply
      .type(planned.contentType)
      .header('content-disposition', `attachment; filename="${planned.fileName}"`)
      .send(output)
  })
}

export default sessionExportRoutes
