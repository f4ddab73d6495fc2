import pg from 'pg'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { IngestPipeline } from '../../src/ingest/pipeline.js'
import { startConnectionServer } from '../fixtures/connection-server.js'
import { TcpProxy } from '../fixtures/tcp-proxy.js'
import { build, createTestDatabase, createUserWithToken } from '../helper.js'
import { MemorySink } from '../ingest/memory-sink.js'
import { makeReadings, TestPhone } from '../ws-client.js'

/**
 * RecordingConnection on its own: a plain ws server (no Fastify), sessions in
 * the real database (reached through a proxy the test can cut), and batches
 * into an in-memory sink, so the connection's order and answers are tested
 * apart from COPY.
 */
const BATCH = 10
const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl) // applies the migrations; its reporter computes reports
const proxy = TcpProxy.forUrl(databaseUrl)
await proxy.start()
const db = new pg.Pool({ connectionString: proxy.url(databaseUrl), max: 4 })
db.on('error', () => {})
afterAll(async () => {
  await db.end()
  await proxy.close()
})

const sink = new MemorySink()
const pipeline = new IngestPipeline({ sinks: [sink], maxRowsPerGroup: 10_000, maxBufferedReadings: 100_000 })
const server = await startConnectionServer({ app, pipeline, db, settings: { batchSize: BATCH, maxInflightBatches: 16 } })
afterAll(async () => {
  await server.close()
  await pipeline.close()
})

const phones: TestPhone[] = []
afterEach(async () => {
  proxy.restore()
  await Promise.all(phones.splice(0).map(phone => phone.close()))
})

async function phoneOf (userId: number): Promise<TestPhone> {
  const phone = await TestPhone.connect(server.url(userId))
  phones.push(phone)
  return phone
}

async function newUser (): Promise<number> {
  return (await createUserWithToken(app)).user.id
}

describe('RecordingConnection', () => {
  it('answers pipelined batches in frame order with running totals, and ends the session', async () => {
    const phone = await phoneOf(await newUser())
    phone.send('create_session', {})
    const { sessionId } = await phone.expect('session_created')
    sink.open(sessionId as number)
    const batches = Array.from({ length: 5 }, (_, batchId) => makeReadings(BATCH, Date.now() - 60_000 + batchId * 1000))
    for (let batchId = 0; batchId < 5; batchId++) phone.send('write_sensor_readings_batch', { batch_id: batchId, sensor_readings: batches[batchId] })
    phone.send('write_sensor_readings_batch', { batch_id: 5, sensor_readings: makeReadings(BATCH - 1) })
    phone.send('write_sensor_readings_batch', { batch_id: 1, sensor_readings: batches[1] })
    for (let batchId = 0; batchId < 5; batchId++) {
      expect(await phone.expect('sensor_readings_batch_written')).toEqual({ sessionId, batchId, totalSensorReadingsWritten: (batchId + 1) * BATCH })
    }
    expect(await phone.expect('invalid_sensor_readings_batch_size')).toEqual({ sessionId, batchId: 5, expected: BATCH, received: BATCH - 1 })
    // A resent batch is acknowledged again with the current total, not written twice.
    expect(await phone.expect('sensor_readings_batch_written')).toEqual({ sessionId, batchId: 1, totalSensorReadingsWritten: 5 * BATCH })

    phone.send('destroy_session', {})
    expect(await phone.expect('session_destroyed')).toMatchObject({ sessionId, reason: 'client' })
  })

  it('names the reading and field of a bad reading, under sensor_readings', async () => {
    const phone = await phoneOf(await newUser())
    phone.send('create_session', {})
    const { sessionId } = await phone.expect('session_created')
    const readings: Array<Record<string, unknown>> = makeReadings(BATCH).map(reading => ({ ...reading }))
    readings[3] = { ...readings[3], xAxis: 'fast' }
    phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: readings })
    const answer = await phone.expect('invalid_sensor_reading_schema')
    expect(answer).toMatchObject({ sessionId, batchId: 0 })
    expect((answer.issues as Array<{ path: unknown[] }>)[0]?.path).toEqual(['sensor_readings', 3, 'xAxis'])
  })

  it('tells a resuming phone whose session cannot be looked up to resend that batch (batch-level storage_unavailable)', async () => {
    const userId = await newUser()
    const first = await phoneOf(userId)
    first.send('create_session', {})
    const { sessionId } = await first.expect('session_created')
    sink.open(sessionId as number)

    // The phone reconnects and writes without create_session while the database is unreachable.
    const resumed = await phoneOf(userId)
    proxy.cut()
    resumed.send('write_sensor_readings_batch', { batch_id: 7, sensor_readings: makeReadings(BATCH) })
    expect(await resumed.expect('storage_unavailable')).toEqual({ sessionId: null, batchId: 7, message: expect.stringContaining('resend'), retryable: true })

    proxy.restore()
    resumed.send('write_sensor_readings_batch', { batch_id: 7, sensor_readings: makeReadings(BATCH) })
    expect(await resumed.expect('sensor_readings_batch_written')).toEqual({ sessionId, batchId: 7, totalSensorReadingsWritten: BATCH })
  })
})
