import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { destroySession, endExpiredSessions } from '../db/session-lifecycle.js'
import { findSessionById } from '../db/sessions-repository.js'
import { AppError, conflict, notFound } from '../errors.js'
import { errorResponse, idParam } from '../schemas/common.js'
import { session } from '../schemas/sessions.js'

/**
 * POST /sessions/:id/end (admin): ends an active session with reason
 * "admin". The phone hears session_destroyed from whichever instance holds
 * its socket: at once here, within the reaper interval elsewhere.
 */
const adminSessionsRoutes: FastifyPluginAsyncZod = async (fastify) => {
  fastify.post('/sessions/:id/end', {
    onRequest: fastify.requireRole('ADMIN'),
    schema: {
      tags: ['sessions'],
      summary: 'End an active session (admin); the phone is told',
      params: idParam,
      response: { 200: session, 404: errorResponse, 409: errorResponse, 503: errorResponse }
    }
  }, async (request) => {
    const { id } = request.params
    const ended = await destroySession(fastify.db, id, 'admin')
    if (ended) {
      fastify.recording.registry.notifyEnded(await fastify.reports.withSummary(ended))
      fastify.recording.deps.observer?.sessionEnded?.('admin')
    } else {
      const existing = await findSessionById(fastify.db, id)
      if (!existing) throw notFound(`Session ${id} does not exist`)
      if (existing.destroyedAt) throw conflict(`Session ${id} already ended (${existing.destroyReason})`)
      // Past its expiry, waiting for the reaper: it ends as expired, not by the admin.
      const expired = (await endExpiredSessions(fastify.db, existing.userId)).find(e => e.id === id)
      if (!expired) throw new AppError(503, 'SESSION_BUSY', `Session ${id} is being expired by another instance; try again`)
      fastify.recording.registry.notifyEnded(await fastify.reports.withSummary(expired))
      fastify.recording.deps.observer?.sessionEnded?.('expired')
      throw conflict(`Session ${id} already ended (expired)`)
    }
    const result = await findSessionById(fastify.db, id)
    if (!result) throw notFound(`Session ${id} does not exist`) // deleted with its user meanwhile
    return result
  })
}

export default adminSessionsRoutes
