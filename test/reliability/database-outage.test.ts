import pg from 'pg'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { withTransaction } from '../../src/db/pool.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { TcpProxy } from '../fixtures/tcp-proxy.js'
import { TestPhone, wsUrl } from '../ws-client.js'
import { BATCH, expectExactRecording, Recorder } from './recorder.js'

const databaseUrl = await createTestDatabase()
const proxy = TcpProxy.forUrl(databaseUrl)
await proxy.start()
afterAll(() => proxy.close())

// The service reaches PostgreSQL only through the proxy; the test checks the database directly.
const app = await build(proxy.url(databaseUrl), { SESSION_REAPER_INTERVAL_MS: '200', INGEST_WRITERS: '2' })
await app.listen({ port: 0, host: '127.0.0.1' })
const direct = new pg.Pool({ connectionString: databaseUrl, max: 2 })
afterAll(() => direct.end())

// In production an uncaught exception ends the process (close-with-grace shuts down on it):
// the outage must not produce any, even one vitest would only report after the test.
const uncaught: unknown[] = []
const onUncaught = (err: unknown) => { uncaught.push(err) }
beforeEach(() => { uncaught.length = 0; process.on('uncaughtException', onUncaught) })
afterEach(() => {
  process.off('uncaughtException', onUncaught)
  expect(uncaught, 'uncaught exceptions (the service process would have died)').toEqual([])
})

const PHONES = 3
const BATCHES = 30

async function ledger (sessionId: number | undefined): Promise<Set<number>> {
  const { rows } = await direct.query<{ batch_id: number }>('select batch_id from session_batches where session_id = $1', [sessionId])
  return new Set(rows.map(row => row.batch_id))
}

describe('a database outage', () => {
  it('answers storage_unavailable (never a false ack), reports 503, and resumes without a restart', async () => {
    const recorders = await Promise.all(Array.from({ length: PHONES }, async () => {
      const { token } = await createUserWithToken(app)
      const recorder = new Recorder(wsUrl(app), token, BATCHES)
      expect(await recorder.connect()).toBe('session_created')
      return recorder
    }))
    const acks = () => recorders.reduce((sum, r) => sum + r.acked.size, 0)

    // Stream; once a third of the batches are acknowledged, cut the database off mid-stream.
    let cutAtAcks = 0
    const watcher = setInterval(() => {
      if (cutAtAcks === 0 && acks() >= (PHONES * BATCHES) / 3) {
        cutAtAcks = acks()
        proxy.cut()
      }
    }, 1)
    await Promise.all(recorders.map(r => r.stream(r.pending, 4)))
    clearInterval(watcher)
    expect(cutAtAcks).toBeGreaterThan(0)

    // Every batch sent got an answer; some could not be committed and were told so.
    const unavailable = recorders.reduce((sum, r) => sum + r.unavailable, 0)
    expect(unavailable).toBeGreaterThan(0)
    expect(acks()).toBeLessThan(PHONES * BATCHES)
    for (const r of recorders) {
      expect(r.acked.size + r.unavailable).toBe(BATCHES)
      expect(r.phone?.closeCode).toBeUndefined() // the sockets stay open through the outage
    }

    // Never a false ack: every acknowledged batch is in the database, whole, with its readings.
    for (const r of recorders) {
      const written = await ledger(r.sessionId)
      for (const batchId of r.acked.keys()) expect(written.has(batchId)).toBe(true)
      const { rows: [row] } = await direct.query(
        'select count(*)::int as n, (select total_sensor_readings_written::int from sessions where id = $1) as total from readings where session_id = $1', [r.sessionId])
      expect(row).toEqual({ n: written.size * BATCH, total: written.size * BATCH })
    }

    // The service is up and says the database is not.
    const health = await app.inject({ url: '/health' })
    expect(health.statusCode).toBe(503)
    expect(health.json()).toMatchObject({ status: 'unavailable' })
    expect((await app.inject({ url: '/status' })).statusCode).toBe(200)
    // A phone connecting meanwhile hears "try again later", not a server error.
    const waiting = recorders.find(r => r.pending.length > 0) as Recorder
    await expect(TestPhone.connect(wsUrl(app), bearer(waiting.token))).rejects.toMatchObject({ statusCode: 503 })
    // A resend during the outage is refused again, still without a false ack.
    const stillPending = waiting.pending[0] as number
    await waiting.stream([stillPending], 1)
    expect(waiting.acked.has(stillPending)).toBe(false)

    // The database comes back: the same sockets resend what was not acknowledged, and finish exactly.
    proxy.restore()
    const deadline = Date.now() + 10_000
    for (const r of recorders) {
      while (r.pending.length > 0 && Date.now() < deadline) {
        await r.stream(r.pending, 4)
        if (r.pending.length > 0) await new Promise(resolve => setTimeout(resolve, 100))
      }
      expect(r.pending).toEqual([])
      expect(await r.destroy()).toMatchObject({ sessionId: r.sessionId, reason: 'client', totalSensorReadingsWritten: BATCHES * BATCH, integrity: 'ok' })
      await expectExactRecording(direct, r)
      await r.phone?.close()
    }
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200)
  })

  it('survives the database going away while the writers sit idle, and the next batch after it returns is acked at once', async () => {
    const { token } = await createUserWithToken(app)
    const recorder = new Recorder(wsUrl(app), token, 3)
    await recorder.connect()
    // Each writer now keeps a checked-out connection between groups.
    await recorder.stream([0], 1)
    expect(recorder.acked.has(0)).toBe(true)

    proxy.cut()
    // Every kept and pooled connection learns it is dead while nothing is being written.
    await new Promise(resolve => setTimeout(resolve, 200))
    expect((await app.inject({ url: '/health' })).statusCode).toBe(503)
    proxy.restore()

    // No retry needed: the dead connections were discarded, not handed to the next group.
    await recorder.stream([1, 2], 2)
    expect(recorder.unavailable).toBe(0)
    expect(await recorder.destroy()).toMatchObject({ integrity: 'ok', totalSensorReadingsWritten: 3 * BATCH })
    await expectExactRecording(direct, recorder)
    await recorder.phone?.close()
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200)
  })

  it('fails a transaction whose connection dies between two statements, without an uncaught error', async () => {
    const attempt = withTransaction(app.db, async client => {
      const { rows: [row] } = await client.query<{ pid: number }>('select pg_backend_pid() as pid')
      await direct.query('select pg_terminate_backend($1)', [row?.pid])
      // The connection's end arrives while no statement runs: an 'error' event on the client.
      await new Promise(resolve => setTimeout(resolve, 200))
      await client.query('select 1')
    })
    await expect(attempt).rejects.toThrow()
    // The pool still serves: the dead client was discarded, not returned.
    expect((await app.db.query('select 1 as one')).rows).toEqual([{ one: 1 }])
  })

  it('a partition (bytes stop, nothing fails): no ack without a commit, /health 503, and all completes once it heals', async () => {
    const recorders = await Promise.all(Array.from({ length: 2 }, async () => {
      const { token } = await createUserWithToken(app)
      const recorder = new Recorder(wsUrl(app), token, 20)
      await recorder.connect()
      return recorder
    }))
    const streams = recorders.map(r => r.stream(r.pending, 4))
    await until(() => recorders.every(r => r.acked.size >= 3), 10_000)
    proxy.hang()
    const health = app.inject({ url: '/health' })
    await new Promise(resolve => setTimeout(resolve, 2500))
    expect((await health).statusCode).toBe(503)
    // Whatever was acknowledged, hang or not, is committed.
    for (const r of recorders) {
      const written = await ledger(r.sessionId)
      for (const batchId of r.acked.keys()) expect(written.has(batchId)).toBe(true)
    }
    expect(recorders.some(r => r.acked.size < 20)).toBe(true)
    proxy.restore()
    await Promise.all(streams)
    for (const r of recorders) {
      while (r.pending.length > 0) await r.stream(r.pending, 4) // storage_unavailable answers, if any, are resent
      expect(await r.destroy()).toMatchObject({ integrity: 'ok', totalSensorReadingsWritten: 20 * BATCH })
      await expectExactRecording(direct, r)
      await r.phone?.close()
    }
  })
})

describe('a partition longer than INGEST_GROUP_TIMEOUT_MS', () => {
  it('fails the stuck group at the timeout: its phone hears storage_unavailable, and resent batches complete the session', async () => {
    const impatient = await build(proxy.url(databaseUrl), { INGEST_GROUP_TIMEOUT_MS: '500', INGEST_WRITERS: '1' })
    await impatient.listen({ port: 0, host: '127.0.0.1' })
    const { token } = await createUserWithToken(impatient)
    const recorder = new Recorder(wsUrl(impatient), token, 6)
    await recorder.connect()
    await recorder.stream([0, 1], 2)
    expect(recorder.unavailable).toBe(0)

    proxy.hang()
    const hungAt = Date.now()
    await recorder.stream([2], 1)
    // Answered by the watchdog, not by TCP giving up: well before the pool's 5 s connect timeout too.
    expect(recorder.unavailable).toBe(1)
    expect(Date.now() - hungAt).toBeLessThan(3000)
    expect(recorder.acked.has(2)).toBe(false)
    proxy.restore()

    while (recorder.pending.length > 0) await recorder.stream(recorder.pending, 2)
    expect(await recorder.destroy()).toMatchObject({ integrity: 'ok', totalSensorReadingsWritten: 6 * BATCH })
    await expectExactRecording(direct, recorder)
    await recorder.phone?.close()
  })
})

async function until (condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}
