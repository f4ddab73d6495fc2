import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { issueAccessToken } from '../../src/db/access-tokens-repository.js'
import { insertUser } from '../../src/db/users-repository.js'
import { killServerProcesses, startServerProcess } from '../fixtures/server-process.js'
import { bearer, createTestDatabase } from '../helper.js'
import { makeReadings, TestPhone, type Frame } from '../ws-client.js'

const BATCH = 375
const AHEAD = 32
const databaseUrl = await createTestDatabase()
const db = new pg.Pool({ connectionString: databaseUrl, max: 2 })
afterAll(async () => {
  await killServerProcesses()
  await db.end()
})

describe('SIGTERM while a phone streams pipelined batches', () => {
  it('answers every batch it received, closes with 1001, exits 0, and every acked batch is whole in the database', async () => {
    const server = await startServerProcess({ DATABASE_URL: databaseUrl, LOG_LEVEL: 'info', SHUTDOWN_GRACE_MS: '10000' })
    const user = await insertUser(db, { name: 'Streamer', email: 'streamer@example.test', publicKey: 'streamer-key', role: 'BETATESTER' })
    const { accessToken } = await issueAccessToken(db, user.id, 3600)
    const phone = await TestPhone.connect(`${server.baseUrl.replace('http', 'ws')}/ws`, bearer(accessToken))
    phone.send('create_session', {})
    const { sessionId } = await phone.expect('session_created')

    // Keep AHEAD batches unanswered at all times, until the server closes the socket.
    const readings = makeReadings(BATCH)
    const acked: number[] = []
    const other: Frame[] = []
    let sent = 0
    let signalled = 0
    while (true) {
      while (sent - acked.length - other.length < AHEAD) phone.send('write_sensor_readings_batch', { batch_id: sent++, sensor_readings: readings })
      const frame = await phone.next().catch(() => undefined)
      if (!frame) break
      if (frame.event !== 'sensor_readings_batch_written') {
        other.push(frame)
        continue
      }
      acked.push(frame.data.batchId as number)
      expect(frame.data.totalSensorReadingsWritten).toBe(acked.length * BATCH)
      if (acked.length === 20) {
        signalled = Date.now()
        server.child.kill('SIGTERM')
      }
    }

    expect(phone.closeCode).toBe(1001)
    expect(await server.exited).toEqual({ code: 0, signal: null })
    expect(Date.now() - signalled).toBeLessThan(10_000)
    expect(other).toEqual([])
    expect(acked.length).toBeGreaterThanOrEqual(20)
    expect(sent).toBeGreaterThan(acked.length) // the stream was cut mid-flight
    expect(acked).toEqual([...acked.keys()]) // in order, no holes

    // Durable: the ledger holds exactly the acked batches, each whole.
    const { rows: ledger } = await db.query<{ batch_id: number, reading_count: number }>(
      'select batch_id, reading_count from session_batches where session_id = $1 order by batch_id', [sessionId])
    expect(ledger.map(row => row.batch_id)).toEqual(acked)
    expect(ledger.every(row => row.reading_count === BATCH)).toBe(true)
    const { rows: [counts] } = await db.query<{ readings: number, total: number }>(
      'select (select count(*)::int from readings where session_id = $1) as readings, total_sensor_readings_written::int as total from sessions where id = $1', [sessionId])
    expect(counts).toEqual({ readings: acked.length * BATCH, total: acked.length * BATCH })
  })
})
