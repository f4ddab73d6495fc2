import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { listSessions, patchSession } from '../db/sessions-repository.js'
import { findUserById } from '../db/users-repository.js'
import { AppError, notFound } from '../errors.js'
import { errorResponse, idParam, pagingQuery } from '../schemas/common.js'
import { patchSessionBody, session, sessionPage } from '../schemas/sessions.js'
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
      summary: 'The caller\'s own sessions, newest first',
      querystring: pagingQuery(50, 500),
      response: { 200: sessionPage, 400: errorResponse, 401: errorResponse }
    }
  }, async (request) => {
    const { take, skip } = request.query
    const userId = (request.auth as NonNullable<typeof request.auth>).userId
    return { ...await listSessions(fastify.db, { userId }, take, skip), take, skip }
  })

  fastify.get('/users/:id/sessions', {
    onRequest: adminOnly,
    schema: {
      tags: ['sessions'],
      summary: 'A user\'s sessions, newest first (admin)',
      params: idParam,
      querystring: pagingQuery(50, 500),
      response: { 200: sessionPage, 404: errorResponse }
    }
  }, async (request) => {
    const { take, skip } = request.query
    if (!await findUserById(fastify.db, request.params.id)) throw notFound(`User ${request.params.id} does not exist`)
    return { ...await listSessions(fastify.db, { userId: request.params.id }, take, skip), take, skip }
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
    return result.session
  })
}

export default sessionsRoutes
