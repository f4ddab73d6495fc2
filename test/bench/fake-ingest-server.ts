import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { WebSocketServer, type WebSocket } from 'ws'

export interface FakeServerOptions {
  batchSize?: number
  /** Ack delay in ms. */
  delayMs?: number
  /** Answer storage_unavailable to the first write of these batch ids. */
  unavailableOnce?: number[]
}

/**
 * A minimal in-memory stand-in for the recording WebSocket of PROTOCOL.md,
 * enough to test the phone simulator without the service.
 */
export async function startFakeIngestServer (options: FakeServerOptions = {}) {
  const batchSize = options.batchSize ?? 375
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  await once(wss, 'listening')
  const written = new Map<number, Set<number>>()
  const failedOnce = new Set<number>()
  let nextSessionId = 1
  const stats = { maxPending: 0 }
  const send = (socket: WebSocket, event: string, data: object) => socket.send(JSON.stringify({ event, data }))

  wss.on('connection', socket => {
    let sessionId: number | undefined
    let chain = Promise.resolve()
    let pending = 0
    socket.on('message', raw => {
      const { event, data } = JSON.parse(raw.toString()) as { event: string, data: Record<string, unknown> }
      if (event === 'write_sensor_readings_batch') stats.maxPending = Math.max(stats.maxPending, ++pending)
      // Acks leave in the order batches arrived, as the real service guarantees.
      chain = chain.then(async () => {
        if (event === 'create_session') {
          sessionId = nextSessionId++
          written.set(sessionId, new Set())
          send(socket, 'session_created', { sessionId, createdAt: new Date().toISOString(), expiresAt: new Date().toISOString() })
        } else if (event === 'write_sensor_readings_batch') {
          pending--
          const batchId = data.batch_id as number
          const readings = data.sensor_readings as unknown[]
          if (sessionId === undefined) return send(socket, 'session_not_found', {})
          if (readings.length !== batchSize) {
            return send(socket, 'invalid_sensor_readings_batch_size', { sessionId, batchId, expected: batchSize, received: readings.length })
          }
          if (options.delayMs) await new Promise(resolve => setTimeout(resolve, options.delayMs))
          if (options.unavailableOnce?.includes(batchId) && !failedOnce.has(batchId)) {
            failedOnce.add(batchId)
            return send(socket, 'storage_unavailable', { sessionId, batchId })
          }
          const batches = written.get(sessionId)!
          batches.add(batchId)
          send(socket, 'sensor_readings_batch_written', { sessionId, batchId, totalSensorReadingsWritten: batches.size * batchSize })
        } else if (event === 'destroy_session') {
          if (sessionId === undefined) return send(socket, 'session_not_found', {})
          const total = written.get(sessionId)!.size * batchSize
          const sent = data.totalSensorReadingsSent
          send(socket, 'session_destroyed', {
            sessionId,
            destroyedAt: new Date().toISOString(),
            reason: 'client',
            totalSensorReadingsWritten: total,
            integrity: sent === undefined ? 'unreported' : sent === total ? 'ok' : 'mismatch'
          })
          sessionId = undefined
        }
      })
    })
  })
  const { port } = wss.address() as AddressInfo
  return {
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    baseUrl: `http://127.0.0.1:${port}`,
    written,
    stats,
    close: async () => {
      for (const client of wss.clients) client.terminate()
      await new Promise(resolve => wss.close(resolve))
    }
  }
}
