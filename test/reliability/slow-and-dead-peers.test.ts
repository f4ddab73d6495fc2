import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { makeReadings, TestPhone, wsUrl } from '../ws-client.js'

const databaseUrl = await createTestDatabase()

const sockets: WebSocket[] = []
afterAll(() => { for (const socket of sockets) socket.terminate() })

async function phoneOf (app: FastifyInstance): Promise<TestPhone> {
  const { token } = await createUserWithToken(app)
  const phone = await TestPhone.connect(wsUrl(app), bearer(token))
  sockets.push(phone.socket)
  phone.send('create_session', {})
  await phone.expect('session_created')
  return phone
}

/** The TCP socket under a ws WebSocket: the test stops reading it, as a stuck phone would. */
const tcpOf = (socket: WebSocket) => (socket as unknown as { _socket: import('node:net').Socket })._socket

/** The server side of the only recording socket the app holds. */
function serverSocketOf (app: FastifyInstance): WebSocket {
  const [socket] = app.websocketServer.clients
  if (!socket) throw new Error('the server holds no socket')
  return socket as WebSocket
}

async function until (condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

describe('a phone that sends but does not read', () => {
  it('is not read any further once WS_MAX_INFLIGHT_BATCHES are unanswered: the server holds at most that many', async () => {
    const INFLIGHT = 4
    const BATCH = 375
    const SENT = 300 // 300 batches of ~40 KB: 12 MB the server must not take in while it cannot answer
    const app = await build(databaseUrl, { WS_MAX_INFLIGHT_BATCHES: String(INFLIGHT) })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const phone = await phoneOf(app)
    const sessionId = (await app.db.query('select max(id)::int as id from sessions')).rows[0].id

    // The database is slow: another transaction holds the session's row, so no batch can commit.
    const blocker = new pg.Client({ connectionString: databaseUrl })
    await blocker.connect()
    try {
      await blocker.query('begin')
      await blocker.query('select 1 from sessions where id = $1 for update', [sessionId])

      tcpOf(phone.socket).pause()
      const start = Date.now() - 3600_000
      for (let batchId = 0; batchId < SENT; batchId++) {
        phone.send('write_sensor_readings_batch', { batch_id: batchId, sensor_readings: makeReadings(BATCH, start + batchId * 1250, batchId) })
      }
      await new Promise(resolve => setTimeout(resolve, 1000))

      // Server side: a bounded number of readings held, and the socket no longer read.
      const held = app.recording.pipeline.bufferedReadings
      const bytesRead = tcpOf(serverSocketOf(app)).bytesRead
      expect(held).toBeGreaterThan(0)
      expect(held).toBeLessThanOrEqual((INFLIGHT + 1) * BATCH)
      expect(bytesRead).toBeLessThan(2 * 1024 * 1024)
      // The rest waits on the phone (TCP pushed back), not in the server.
      expect(phone.socket.bufferedAmount).toBeGreaterThan(4 * 1024 * 1024)
      await new Promise(resolve => setTimeout(resolve, 500))
      expect(tcpOf(serverSocketOf(app)).bytesRead).toBe(bytesRead)
    } finally {
      await blocker.query('rollback')
      await blocker.end()
    }

    // The database frees up and the phone reads again: every batch is written and acked, in order.
    tcpOf(phone.socket).resume()
    for (let batchId = 0; batchId < SENT; batchId++) {
      expect(await phone.expect('sensor_readings_batch_written', 20_000)).toMatchObject({ batchId, totalSensorReadingsWritten: (batchId + 1) * BATCH })
    }
    expect(app.recording.pipeline.bufferedReadings).toBe(0)
    const { rows: [count] } = await app.db.query('select count(*)::int as n from readings where session_id = $1', [sessionId])
    expect(count?.n).toBe(SENT * BATCH)
  })

  it('is closed (1008) once more than 4 MiB of answers wait unsent, and cut off when it cannot read even that', async () => {
    // Batches of one reading, each answered with a schema rejection several times its size.
    const app = await build(databaseUrl, { SENSOR_READINGS_BATCH_SIZE: '1' })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const phone = await phoneOf(app)
    tcpOf(phone.socket).pause()
    const server = serverSocketOf(app)
    let peak = 0
    const sampler = setInterval(() => { peak = Math.max(peak, server.bufferedAmount) }, 5)
    const rssBefore = process.memoryUsage().rss
    try {
      const frame = JSON.stringify({ event: 'write_sensor_readings_batch', data: { batch_id: 0, sensor_readings: [{}] } })
      let sent = 0
      // Keep sending until the server gives up on the phone (its close frame cannot be read: watch the server side).
      while (server.readyState === WebSocket.OPEN && sent < 400_000) {
        for (let i = 0; i < 1000; i++) phone.socket.send(frame)
        sent += 1000
        await new Promise(resolve => setImmediate(resolve))
      }
      expect(server.readyState).not.toBe(WebSocket.OPEN)
      // The socket is let go of promptly, not after ws's 30 s closing handshake timeout.
      await until(() => app.recording.sockets.size === 0, 5000, 'the server did not drop the connection')
    } finally {
      clearInterval(sampler)
    }
    expect(peak).toBeGreaterThan(4 * 1024 * 1024)
    expect(peak).toBeLessThan(6 * 1024 * 1024)
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200 * 1024 * 1024)
    tcpOf(phone.socket).resume()
    await phone.closed
    expect([1006, 1008]).toContain(phone.closeCode)
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200)
  })
})

describe('a silent phone', () => {
  it('is dropped by keep-alive when it does not answer pings, while a live one stays', async () => {
    const app = await build(databaseUrl, { WS_PING_INTERVAL_MS: '100' })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const live = await phoneOf(app)
    const { token } = await createUserWithToken(app)
    const silent = new WebSocket(wsUrl(app), { headers: bearer(token), autoPong: false })
    sockets.push(silent)
    await new Promise((resolve, reject) => silent.once('open', resolve).once('error', reject))
    const closed = new Promise<number>(resolve => silent.once('close', code => resolve(code)))
    let pings = 0
    silent.on('ping', () => pings++)
    await until(() => app.recording.sockets.size === 2, 1000, 'both sockets were not registered')

    // Terminated (1006): a dead peer gets no closing handshake. Within two intervals and a bit.
    expect(await Promise.race([closed, new Promise(resolve => setTimeout(() => resolve('still open'), 1000))])).toBe(1006)
    expect(pings).toBeGreaterThan(0)
    await until(() => app.recording.sockets.size === 1, 1000, 'the silent socket was not released')

    // The phone that answers pings is still there many intervals later, and still works.
    await new Promise(resolve => setTimeout(resolve, 600))
    expect(live.closeCode).toBeUndefined()
    live.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: makeReadings(375) })
    await live.expect('sensor_readings_batch_written')
  })
})
