import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import { loggerOptions } from '../../src/logger.js'
import { CSV_HEADER } from '../../src/db/readings/readings-export.js'
import { generateReadings, insertReadings, insertSession } from '../fixtures/sessions.js'
import { TcpProxy } from '../fixtures/tcp-proxy.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { makeReadings, TestPhone, wsUrl } from '../ws-client.js'

// Far more CSV (~50 MiB) than the socket buffers between the database, the server and a client hold,
// so a download nobody reads keeps its COPY running.
const BIG = 600_000
const BATCH = 375

const databaseUrl = await createTestDatabase()
// Builds the data through an app whose only job is that; each test builds the app it needs.
const setup = await build(databaseUrl)
const hoarder = await createUserWithToken(setup)
const bigSession = await insertSession(setup.db, hoarder.user.id)
await generateReadings(setup.db, bigSession, BIG)

// A connection of its own, to watch and to kill backends without borrowing from any pool under test.
const observer = new pg.Client({ connectionString: databaseUrl })
await observer.connect()
afterAll(() => observer.end())

async function runningExports (): Promise<Array<{ pid: number, wait_event: string | null }>> {
  const { rows } = await observer.query<{ pid: number, wait_event: string | null }>(
    `select pid, wait_event from pg_stat_activity
     where datname = current_database() and pid <> pg_backend_pid() and query like 'copy (%'`)
  return rows
}

/** A user of their own with a small session of three readings. */
async function userWithSmallSession (app: FastifyInstance) {
  const owner = await createUserWithToken(app)
  const session = await insertSession(app.db, owner.user.id)
  await insertReadings(app.db, session, [
    { timestamp: '2024-06-01T10:00:00.000001Z', sensor: 'Accelerometer', x: 1, y: 2, z: 3 },
    { timestamp: '2024-06-01T10:00:00.000002Z', sensor: 'Gyroscope', x: 4, y: 5, z: 6 },
    { timestamp: '2024-06-01T10:00:00.000003Z', sensor: 'Magnetometer', x: 7, y: 8, z: 9 }
  ])
  return { ...owner, session }
}

const openResponses: http.IncomingMessage[] = []
afterEach(() => {
  for (const response of openResponses.splice(0)) response.destroy()
})

/**
 * Starts a download on a connection of its own and reads nothing of the
 * body: the response is handed back paused, as a stalled client leaves it.
 */
function startDownload (app: FastifyInstance, path: string, token: string): Promise<http.IncomingMessage> {
  const { port } = app.server.address() as AddressInfo
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, headers: bearer(token), agent: false }, response => {
      response.pause()
      openResponses.push(response)
      resolve(response)
    }).on('error', reject)
  })
}

async function readBody (response: http.IncomingMessage): Promise<string> {
  response.setEncoding('utf8')
  let body = ''
  for await (const chunk of response) body += chunk
  return body
}

/** Reads a response to its end; complete is false when the server cut it short. */
function drain (response: http.IncomingMessage): Promise<boolean> {
  // A connection the server closed early may be gone before the body was ever read.
  if (response.destroyed) return Promise.resolve(response.complete)
  return new Promise(resolve => {
    response.on('error', () => {})
    response.once('close', () => resolve(response.complete))
    response.resume()
  })
}

async function listening (env: Record<string, string>, options: Parameters<typeof build>[2] = {}): Promise<FastifyInstance> {
  const app = await build(databaseUrl, env, options)
  await app.listen({ port: 0, host: '127.0.0.1' })
  return app
}

describe('a database connection lost during a CSV download', () => {
  it('fails that download only; the service answers on', async () => {
    const app = await listening({})
    const other = await userWithSmallSession(app)
    const download = await startDownload(app, `/sessions/${bigSession}/readings.csv`, hoarder.token)
    expect(download.statusCode).toBe(200)
    // Blocked writing to the server, as under a slow download: a backend terminated there closes
    // the connection without a last error message, so pg reports it as a lost connection.
    await vi.waitFor(async () => expect(await runningExports()).toEqual([{ pid: expect.any(Number), wait_event: 'ClientWrite' }]),
      { timeout: 10_000, interval: 50 })

    // What an operator (or a failover) does to a slow COPY from another client.
    const { rows } = await observer.query<{ killed: boolean }>(
      `select pg_terminate_backend(pid) as killed from pg_stat_activity
       where datname = current_database() and pid <> pg_backend_pid() and query like 'copy (%'`)
    expect(rows).toEqual([{ killed: true }])

    // The download is cut short (chunked, so its end is missing) and its connection is gone.
    expect(await drain(download)).toBe(false)
    await vi.waitFor(() => expect(app.exportPool.active).toBe(0), { timeout: 5000, interval: 20 })

    // Still up: an uncaught 'error' would have failed this file (and ended a real process).
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200)
    const again = await app.inject({ url: `/sessions/${other.session}/readings.csv`, headers: bearer(other.token) })
    expect(again.statusCode).toBe(200)
    expect(again.body.trimEnd().split('\n')).toHaveLength(4)
    const page = await app.inject({ url: `/sessions/${bigSession}/readings?take=2`, headers: bearer(hoarder.token) })
    expect(page.json().items).toHaveLength(2)
  })

  it('fails that download only when the network drops the connection', async () => {
    const proxy = TcpProxy.forUrl(databaseUrl)
    await proxy.start()
    afterAll(() => proxy.close())
    const app = await build(proxy.url(databaseUrl))
    await app.listen({ port: 0, host: '127.0.0.1' })
    const download = await startDownload(app, `/sessions/${bigSession}/readings.csv`, hoarder.token)
    expect(download.statusCode).toBe(200)
    await vi.waitFor(async () => expect(await runningExports()).toHaveLength(1), { timeout: 10_000, interval: 50 })

    // A reset without PostgreSQL's last word: pg reports it as an 'error' on the checked-out client first, then fails the COPY.
    proxy.cut()
    expect(await drain(download)).toBe(false)
    await vi.waitFor(() => expect(app.exportPool.active).toBe(0), { timeout: 5000, interval: 20 })
    proxy.restore()

    const owner = await userWithSmallSession(app)
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200)
    const again = await app.inject({ url: `/sessions/${owner.session}/readings.csv`, headers: bearer(owner.token) })
    expect(again.statusCode).toBe(200)
    expect(again.body.trimEnd().split('\n')).toHaveLength(4)
  })
})

describe('a user who opens many downloads and reads none', () => {
  it('gets two, is refused the rest with 429, and cannot slow down recording, auth or anyone else\'s export', async () => {
    const lines: string[] = []
    const { transport: _pretty, ...jsonOptions } = loggerOptions('info')
    const app = await listening({ EXPORT_IDLE_TIMEOUT_MS: '3000' }, { logger: { ...jsonOptions, stream: { write: (line: string) => { lines.push(line) } } } })
    const other = await userWithSmallSession(app)

    const downloads = await Promise.all(Array.from({ length: 20 }, () => startDownload(app, `/sessions/${bigSession}/readings.csv`, hoarder.token)))
    const stalled = downloads.filter(response => response.statusCode === 200)
    const refused = downloads.filter(response => response.statusCode !== 200)
    expect(stalled).toHaveLength(2)
    expect(refused).toHaveLength(18)
    for (const response of refused) {
      expect(response.statusCode).toBe(429)
      expect(response.headers['retry-after']).toBe('5')
      expect(JSON.parse(await readBody(response))).toEqual({ error: 'TOO_MANY_EXPORTS', message: expect.stringContaining('2 exports') })
    }
    // The JSON pages count as exports too.
    const page = await app.inject({ url: `/sessions/${bigSession}/readings?take=1`, headers: bearer(hoarder.token) })
    expect(page.statusCode).toBe(429)
    expect(app.exportPool.active).toBe(2)
    expect(await runningExports()).toHaveLength(2)

    // A phone records beside them, each batch acknowledged promptly.
    const recorder = await createUserWithToken(app)
    const phone = await TestPhone.connect(wsUrl(app), bearer(recorder.token))
    try {
      phone.send('create_session', {})
      const { sessionId } = await phone.expect('session_created', 2000)
      const start = Date.now() - 60_000
      for (let batchId = 0; batchId < 5; batchId++) {
        phone.send('write_sensor_readings_batch', { batch_id: batchId, sensor_readings: makeReadings(BATCH, start + batchId * 1250) })
        expect(await phone.expect('sensor_readings_batch_written', 2000)).toMatchObject({ sessionId, batchId })
      }
    } finally {
      await phone.close()
    }

    // Health, login and /me answer; another user exports both ways.
    const { port } = app.server.address() as AddressInfo
    const base = `http://127.0.0.1:${port}`
    expect((await fetch(`${base}/health`)).status).toBe(200)
    const login = await fetch(`${base}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: other.user.email, publicKey: other.user.publicKey })
    })
    expect(login.status).toBe(200)
    expect((await fetch(`${base}/me`, { headers: bearer(other.token) })).status).toBe(200)
    const csv = await fetch(`${base}/sessions/${other.session}/readings.csv`, { headers: bearer(other.token) })
    expect(csv.status).toBe(200)
    expect((await csv.text()).split('\n')[0]).toBe(CSV_HEADER)
    const json = await fetch(`${base}/sessions/${other.session}/readings`, { headers: bearer(other.token) })
    expect(json.status).toBe(200)
    expect(((await json.json()) as { items: unknown[] }).items).toHaveLength(3)

    // Past the idle timeout both stalled downloads are cut, their COPYs stopped and connections freed.
    await vi.waitFor(async () => {
      expect(app.exportPool.active).toBe(0)
      expect(await runningExports()).toEqual([])
    }, { timeout: 10_000, interval: 50 })
    for (const response of stalled) expect(await drain(response)).toBe(false)
    const aborted = lines.map(line => JSON.parse(line)).filter(entry => entry.msg?.startsWith('Readings export aborted'))
    expect(aborted).toHaveLength(2)
    expect(aborted[0]).toMatchObject({ level: 40, idleTimeoutMs: 3000, sessionId: bigSession })

    // Their slots are free again.
    const after = await app.inject({ url: `/sessions/${bigSession}/readings?take=1`, headers: bearer(hoarder.token) })
    expect(after.statusCode).toBe(200)
  })
})

describe('the export pool', () => {
  it('waits a bounded time when every export connection is taken, then answers 503, leaving the service pool alone', async () => {
    const app = await listening({ EXPORT_POOL_MAX: '2', EXPORT_POOL_WAIT_MS: '500', EXPORT_MAX_PER_USER: '5' })
    const other = await userWithSmallSession(app)
    const stalled = await Promise.all([1, 2].map(() => startDownload(app, `/sessions/${bigSession}/readings.csv`, hoarder.token)))
    expect(stalled.map(response => response.statusCode)).toEqual([200, 200])
    expect(app.exportPool.active).toBe(2)
    // The COPYs run on the export pool's own connections.
    const { rows } = await observer.query(
      `select application_name from pg_stat_activity
       where datname = current_database() and pid <> pg_backend_pid() and query like 'copy (%'`)
    expect(rows).toEqual([{ application_name: 'motion-ingest-export' }, { application_name: 'motion-ingest-export' }])

    for (const path of [`/sessions/${other.session}/readings.csv`, `/sessions/${other.session}/readings`]) {
      const busy = await app.inject({ url: path, headers: bearer(other.token) })
      expect(busy.statusCode).toBe(503)
      expect(busy.headers['retry-after']).toBe('5')
      expect(busy.json()).toEqual({ error: 'EXPORTS_BUSY', message: expect.any(String) })
    }
    expect(app.exportPool.waiting).toBe(0)
    expect(app.exportPool.active).toBe(2)
    expect(app.db.waitingCount).toBe(0)
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200)
    expect((await app.inject({ url: '/me', headers: bearer(other.token) })).statusCode).toBe(200)
  })

  it('hands a freed connection to the export waiting for it', async () => {
    const app = await listening({ EXPORT_POOL_MAX: '1', EXPORT_POOL_WAIT_MS: '10000' })
    const other = await userWithSmallSession(app)
    const stalled = await startDownload(app, `/sessions/${bigSession}/readings.csv`, hoarder.token)
    expect(stalled.statusCode).toBe(200)
    const waiting = app.inject({ url: `/sessions/${other.session}/readings.csv`, headers: bearer(other.token) })
    await vi.waitFor(() => expect(app.exportPool.waiting).toBe(1), { timeout: 5000, interval: 5 })
    stalled.destroy()
    const served = await waiting
    expect(served.statusCode).toBe(200)
    expect(served.body.trimEnd().split('\n')).toHaveLength(4)
    // Returned once its COMMIT is through, just after the body's end.
    await vi.waitFor(() => expect(app.exportPool.active).toBe(0), { timeout: 5000, interval: 10 })
  })
})

describe('shutting down', () => {
  it('ends the downloads still running instead of waiting for their readers', async () => {
    const app = await listening({ EXPORT_IDLE_TIMEOUT_MS: '600000' })
    const download = await startDownload(app, `/sessions/${bigSession}/readings.csv`, hoarder.token)
    expect(download.statusCode).toBe(200)
    await vi.waitFor(async () => expect(await runningExports()).toHaveLength(1), { timeout: 10_000, interval: 50 })
    // Without it, close() would wait for the export pool until the idle timeout, past any shutdown grace.
    await app.close()
    await vi.waitFor(async () => expect(await runningExports()).toEqual([]), { timeout: 5000, interval: 50 })
    expect(await drain(download)).toBe(false)
  }, 20_000)
})

describe('the read path keeps what was stored', () => {
  it('after= is strictly later at microsecond precision: a reading at .753000 is after .7529996', async () => {
    const app = await build(databaseUrl)
    const owner = await createUserWithToken(app)
    const session = await insertSession(app.db, owner.user.id)
    const stamps = ['2024-07-01T12:00:21.752999Z', '2024-07-01T12:00:21.753000Z', '2024-07-01T12:00:21.753001Z']
    await insertReadings(app.db, session, stamps.map(timestamp => ({ timestamp, sensor: 'Accelerometer', x: 1, y: 2, z: 3 })))
    const after = async (instant: string) => {
      const response = await app.inject({ url: `/sessions/${session}/readings?after=${encodeURIComponent(instant)}`, headers: bearer(owner.token) })
      expect(response.statusCode).toBe(200)
      return response.json().items.map((item: { timestamp: string }) => item.timestamp)
    }
    expect(await after('2024-07-01T12:00:21.7529996Z')).toEqual(stamps.slice(1))
    expect(await after('2024-07-01T14:00:21.752999999+02:00')).toEqual(stamps.slice(1))
    expect(await after('2024-07-01T12:00:21.753Z')).toEqual(stamps.slice(2))
    expect(await after('2024-07-01T12:00:21.7530004Z')).toEqual(stamps.slice(2))
    expect(await after('2024-07-01T12:00:21.752998Z')).toEqual(stamps)
  })

  it('JSON pages keep the sign of -0, as the CSV does', async () => {
    const app = await build(databaseUrl)
    const owner = await createUserWithToken(app)
    const session = await insertSession(app.db, owner.user.id)
    await insertReadings(app.db, session, [{ timestamp: '2024-07-01T12:00:00Z', sensor: 'Gyroscope', x: -0, y: 0, z: -1.5 }])
    const json = await app.inject({ url: `/sessions/${session}/readings`, headers: bearer(owner.token) })
    expect(json.statusCode).toBe(200)
    expect(json.body).toContain('"xAxis":-0,"yAxis":0,"zAxis":-1.5')
    const [item] = json.json().items
    expect(Object.is(item.xAxis, -0)).toBe(true)
    expect(Object.is(item.yAxis, 0)).toBe(true)
    const csv = await app.inject({ url: `/sessions/${session}/readings.csv`, headers: bearer(owner.token) })
    expect(csv.body.trimEnd().split('\n')[1]).toBe('2024-07-01T12:00:00.000000Z,Gyroscope,-0,0,-1.5')
  })
})
