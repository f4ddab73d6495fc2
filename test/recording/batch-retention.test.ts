import v8 from 'node:v8'
import vm from 'node:vm'
import { afterAll, describe, expect, it } from 'vitest'
import { IngestPipeline } from '../../src/ingest/pipeline.js'
import { startConnectionServer } from '../fixtures/connection-server.js'
import { build, createTestDatabase, createUserWithToken } from '../helper.js'
import { MemorySink } from '../ingest/memory-sink.js'
import { makeReadings, TestPhone } from '../ws-client.js'

/**
 * Memory under overload: a batch waiting for its commit holds its rows (a
 * Buffer, outside the JS heap), not the JSON objects it was parsed from, or
 * a full ingest buffer would keep hundreds of MB of parsed JSON alive.
 */
v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

const BATCH = 375
const BATCHES = 120
const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl)

const sink = new MemorySink()
const pipeline = new IngestPipeline({ sinks: [sink], maxRowsPerGroup: BATCH, maxBufferedReadings: 10_000_000 })
const userId = (await createUserWithToken(app)).user.id
const server = await startConnectionServer({ app, pipeline, settings: { batchSize: BATCH, maxInflightBatches: 1000 } })
afterAll(async () => {
  await server.close()
  await pipeline.close()
})

function heapUsed (): number {
  gc()
  gc()
  return v8.getHeapStatistics().used_heap_size
}

describe('a batch waiting for its commit', () => {
  it('does not keep the JSON it was parsed from alive', async () => {
    const phone = await TestPhone.connect(server.url(userId))
    phone.send('create_session', {})
    const { sessionId } = await phone.expect('session_created')
    sink.open(sessionId as number)
    let release!: () => void
    sink.gate = new Promise(resolve => { release = resolve })
    // The frames are sent as text made once, so the test itself holds no parsed readings.
    const frames = Array.from({ length: BATCHES }, (_, batchId) =>
      JSON.stringify({ event: 'write_sensor_readings_batch', data: { batch_id: batchId, sensor_readings: makeReadings(BATCH, Date.now() - 600_000 + batchId * 1250, batchId) } }))
    const before = heapUsed()
    for (const frame of frames) phone.sendRaw(frame)
    const deadline = Date.now() + 20_000
    while (pipeline.bufferedReadings < BATCHES * BATCH && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
    expect(pipeline.bufferedReadings).toBe(BATCHES * BATCH)
    const held = heapUsed() - before
    release()
    // Parsed, a batch of 375 readings is about 60 KB of objects (7.5 MB measured for these 120 when they
    // were kept); a waiting batch holds under 4 KB of heap.
    expect(held).toBeLessThan(BATCHES * 25_000)
    for (let batchId = 0; batchId < BATCHES; batchId++) expect(await phone.expect('sensor_readings_batch_written')).toMatchObject({ batchId })
    await phone.close()
  })
})
