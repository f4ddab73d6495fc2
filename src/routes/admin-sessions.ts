import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { findSessionById } from '../db/sessions/sessions-repository.js'
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
    const result = await fastify.recording.sessions.endByAdmin(id)
    switch (result.status) {
      case 'not_found':
        throw notFound(`Session ${id} does not exist`)
      case 'already_ended':
        throw conflict(`Session ${id} already ended (${result.reason})`)
      case 'expired':
        throw conflict(`Session ${id} already ended (expired)`)
      case 'busy':
        throw new AppError(503, 'SESSION_BUSY', `Session ${id} is being expired by another instance; try again`)
      case 'ended': {
        const ended = await findSessionById(fastify.db, id)
        if (!ended) throw notFound(`Session ${id} does not exist`) // deleted with its user meanwhile
        return ended
      }
    }
  })
}

export default adminSessionsRoutes
