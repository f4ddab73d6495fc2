import type { FastifyInstance, FastifyRequest } from 'fastify'
import { AppError } from '../errors.js'

/** GET /ws: the recording socket for beta testers (docs/protocol.md). */
export default async function wsRoutes (fastify: FastifyInstance) {
  const { sockets } = fastify.recording
  const betaTestersOnly = fastify.requireRole('BETATESTER')
  const userIdOf = (request: FastifyRequest) => (request.auth as { userId: number }).userId

  // Runs before the upgrade, so refusals are plain HTTP answers the phone can read.
  async function admit (request: FastifyRequest) {
    const admission = sockets.admit(userIdOf(request))
    if (!admission.admitted) throw new AppError(admission.status, admission.code, admission.message)
  }

  fastify.get('/ws', {
    websocket: true,
    onRequest: [betaTestersOnly, admit],
    config: { acceptsQueryToken: true },
    schema: { hide: true }
  }, (socket, request) => {
    sockets.accept(socket, userIdOf(request), request.log)
  })
}
