import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { isStatementTimeout } from '../db/errors.js'
import { listSessionsPage, patchSession } from '../db/sessions/sessions-repository.js'
import { markReportPending } from '../db/sessions/session-reports-repository.js'
import { findUserById } from '../db/users-repository.js'
import { AppError, conflict, forbidden, notFound } from '../errors.js'
import { errorResponse, idParam } from '../schemas/common.js'
import { sessionReport } from '../schemas/session-report.js'
import { patchSessionBody, session, sessionListQuery, sessionPage, userSessionListQuery } from '../schemas/sessions.js'
import { findVisibleSession } from './session-access.js'

export interface SessionsRoutesOptions {
  /** Cap on a session's metadata after a merge, in bytes of its JSON text. */
  metadataMaxBytes: number
}

const sessionsRoutes: FastifyPluginAsyncZod<SessionsRoutesOptions> = async (fastify, options) => {
  const adminOnly = fastify.requireRole('ADMIN')

  fastify.get('/sessions', {
    onRequest: fastify.authenticate,
    schema: {
      tags: ['sessions'],
      summary: 'The caller\'s sessions (an admin\'s: every user\'s), newest first unless sorted otherwise, optionally only those to look at',
      description: 'Admins do not record, so for an admin this lists every user\'s sessions: `?integrity=mismatch`, `?incomplete=true` or `?flagged=true` ' +
        'is the list of sessions to look at, `?active=true` those recording now, `?userId=` one user\'s. Page with take/skip, or with take and ' +
        'the previous page\'s nextCursor, which neither repeats nor skips a session when sessions are added meanwhile.',
      querystring: sessionListQuery,
      response: { 200: sessionPage, 400: errorResponse, 401: errorResponse, 403: errorResponse }
    }
  }, async (request) => {
    const { take, skip, sort, cursor, userId, ...filter } = request.query
    const auth = request.auth as NonNullable<typeof request.auth>
    if (auth.role !== 'ADMIN' && userId !== undefined) throw forbidden('Only admins filter by userId; a beta tester sees only their own sessions')
    const owner = auth.role === 'ADMIN' ? userId : auth.userId
    return { ...await listSessionsPage(fastify.db, { ...filter, userId: owner }, { take, skip, sort, cursor }), take, skip }
  })

  fastify.get('/users/:id/sessions', {
    onRequest: adminOnly,
    schema: {
      tags: ['sessions'],
      summary: 'A user\'s sessions, newest first unless sorted otherwise (admin)',
      description: 'The same filters, sorts and paging as GET /sessions.',
      params: idParam,
      querystring: userSessionListQuery,
      response: { 200: sessionPage, 400: errorResponse, 404: errorResponse }
    }
  }, async (request) => {
    const { take, skip, sort, cursor, ...filter } = request.query
    if (!await findUserById(fastify.db, request.params.id)) throw notFound(`User ${request.params.id} does not exist`)
    return { ...await listSessionsPage(fastify.db, { ...filter, userId: request.params.id }, { take, skip, sort, cursor }), take, skip }
  })

  fastify.get('/sessions/:id', {
    onRequest: fastify.authenticate,
    schema: {
      tags: ['sessions'],
      summary: 'One session (owner or admin)',
      params: idParam,
      response: { 200: session, 404: errorResponse }
    }
  }, async (request) => findVisibleSession(fastify.db, request.auth, request.params.id))

  fastify.get('/sessions/:id/report', {
    onRequest: fastify.authenticate,
    schema: {
      tags: ['sessions'],
      summary: 'The session\'s completeness report: per sensor counts, rates, gaps, duplicates; lost batches; clock offset and drift; integrity (owner or admin)',
      description: 'Computed once when the session ends and stored; a session ended before reports existed gets one computed on first request.',
      params: idParam,
      response: { 200: sessionReport, 404: errorResponse, 409: errorResponse, 503: errorResponse }
    }
  }, async (request) => {
    const { id } = request.params
    await findVisibleSession(fastify.db, request.auth, id)
    const result = await fastify.reports.report(id).catch((err: unknown) => {
      if (!isStatementTimeout(err)) throw err
      throw new AppError(503, 'REPORT_TIMEOUT', `The report of session ${id} took longer than the configured limit; try again later`)
    })
    if (result.status === 'not-found') throw notFound(`Session ${id} does not exist`)
    if (result.status === 'active') throw conflict(`Session ${id} is still recording; its report is computed when it ends`)
    return result.report
  })

  fastify.patch('/sessions/:id', {
    onRequest: fastify.authenticate,
    schema: {
      tags: ['sessions'],
      summary: 'Merge metadata; flag or unflag as recorded incorrectly (owner or admin)',
      params: idParam,
      body: patchSessionBody,
      response: { 200: session, 400: errorResponse, 404: errorResponse, 413: errorResponse }
    }
  }, async (request) => {
    const { id } = request.params
    await findVisibleSession(fastify.db, request.auth, id)
    const result = await patchSession(fastify.db, id, request.body, options.metadataMaxBytes)
    if (result.status === 'not-found') throw notFound(`Session ${id} does not exist`)
    if (result.status === 'metadata-too-large') {
      throw new AppError(413, 'METADATA_TOO_LARGE', `The merged metadata would take ${result.bytes} bytes; the limit is ${options.metadataMaxBytes}`)
    }
    // The report judges the rate against metadata sampleRateHz: a new intent means a new report.
    // Marked due first (the old report withdrawn), so that whatever is not computed now the reaper
    // computes; the answer then says report: null rather than show the summary of the old intent.
    if (result.session.destroyedAt && request.body.metadata && 'sampleRateHz' in request.body.metadata) {
      await markReportPending(fastify.db, id)
      const recomputed = await fastify.reports.recompute(id, (request.auth as NonNullable<typeof request.auth>).userId)
      return { ...result.session, report: recomputed.status === 'ready' ? recomputed.summary : null }
    }
    return result.session
  })
}

export default sessionsRoutes
