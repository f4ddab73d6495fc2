import type { FastifyInstance, FastifyRequest } from 'fastify'
import { AppError } from '../errors.js'
import { RecordingConnection } from '../recording/connection.js'

export interface WsRoutesOptions {
  maxConnections: number
  maxConnectionsPerUser: number
}

/** GET /ws: the recording socket for beta testers (PROTOCOL.md). */
export default async function wsRoutes (fastify: FastifyInstance, options: WsRoutesOptions) {
  const { recording } = fastify
  const betaTestersOnly = fastify.requireRole('BETATESTER')

  // Runs before the upgrade, so refusals are plain HTTP answers the phone can read.
  async function admit (request: FastifyRequest) {
    if (recording.connections.size >= options.maxConnections) {
      throw new AppError(503, 'TOO_MANY_CONNECTIONS', 'This server holds its maximum of recording sockets; retry later')
    }
    const userId = (request.auth as { userId: number }).userId
    if ((recording.connectionsPerUser.get(userId) ?? 0) >= options.maxConnectionsPerUser) {
      throw new AppError(429, 'TOO_MANY_CONNECTIONS_FOR_USER', `At most ${options.maxConnectionsPerUser} recording sockets per user`)
    }
  }

  fastify.get('/ws', {
    websocket: true,
    onRequest: [betaTestersOnly, admit],
    config: { acceptsQueryToken: true },
    schema: { hide: true }
  }, (socket, request) => {
    const userId = (request.auth as { userId: number }).userId
    const connection = new RecordingConnection(socket, userId, recording.deps)
    recording.connections.add(connection)
    fastify.metrics.openSockets.inc()
    recording.connectionsPerUser.set(userId, (recording.connectionsPerUser.get(userId) ?? 0) + 1)
    // Attached before any await, so no frame can arrive unheard.
    socket.on('message', (data, isBinary) => connection.handleMessage(data, isBinary))
    socket.on('pong', () => { (socket as typeof socket & { missedPong?: boolean }).missedPong = false })
    socket.on('error', err => {
      request.log.debug({ err }, 'Recording socket error.')
      socket.terminate()
    })
    socket.on('close', () => {
      connection.handleClose()
      recording.connections.delete(connection)
      fastify.metrics.openSockets.dec()
      const left = (recording.connectionsPerUser.get(userId) ?? 1) - 1
      if (left > 0) recording.connectionsPerUser.set(userId, left)
      else recording.connectionsPerUser.delete(userId)
    })
  })
}
