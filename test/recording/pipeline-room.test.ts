import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, describe, expect, it } from 'vitest'
import { IngestPipeline } from '../../src/ingest/pipeline.js'
import type { GroupWriteResult, PendingBatch } from '../../src/ingest/types.js'
import { startConnectionServer } from '../fixtures/connection-server.js'
import { build, createTestDatabase, createUserWithToken } from '../helper.js'
import { MemorySink } from '../ingest/memory-sink.js'
import { makeReadings, TestPhone } from '../ws-client.js'

/** A sink that commits one group each time the test says so. */
class SteppedSink extends MemorySink {
  private readonly steps: Array<() => void> = []
  pending = 0

  override async writeGroup (batches: readonly PendingBatch[]): Promise<GroupWriteResult> {
    this.pending++
    await new Promise<void>(resolve => this.steps.push(resolve))
    this.pending--
    return await super.writeGroup(batches)
  }

  /** Lets the oldest waiting group commit. */
  step (): void {
    this.steps.shift()?.()
  }
}

/**
 * Under overload, sockets wait for room in the pipeline in turn: a phone
 * whose own ack frees it while the pipeline is full queues behind the
 * phones already waiting, instead of sending again first.
 */
const BATCH = 10
const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl)
const sink = new SteppedSink()
// Two batches fill the pipeline; each phone may have one batch unanswered.
const pipeline = new IngestPipeline({ sinks: [sink], maxRowsPerGroup: 10_000, maxBufferedReadings: 2 * BATCH })
const server = await startConnectionServer({ app, pipeline, settings: { batchSize: BATCH, maxInflightBatches: 1 } })
const phones: TestPhone[] = []
afterAll(async () => {
  const pump = setInterval(() => sink.step(), 10)
  await Promise.all(phones.map(phone => phone.close()))
  await server.close()
  await pipeline.close()
  clearInterval(pump)
})

async function recordingPhone (): Promise<{ phone: TestPhone, sessionId: number }> {
  const { user } = await createUserWithToken(app)
  const phone = await TestPhone.connect(server.url(user.id))
  phones.push(phone)
  phone.send('create_session', {})
  const sessionId = (await phone.expect('session_created')).sessionId as number
  sink.open(sessionId)
  return { phone, sessionId }
}

async function until (condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await sleep(10)
  expect(condition()).toBe(true)
}

const write = (phone: TestPhone, batchId: number) =>
  phone.send('write_sensor_readings_batch', { batch_id: batchId, sensor_readings: makeReadings(BATCH, Date.now() - 60_000 + batchId * 1000) })

describe('room in a full pipeline', () => {
  it('goes to the sockets already waiting before one freed by its own ack', async () => {
    const a = await recordingPhone()
    const b = await recordingPhone()
    const c = await recordingPhone()

    // A's batch commits first (held); the pipeline has room, so A waits only for its ack.
    write(a.phone, 0)
    await until(() => sink.pending === 1)
    // B's batch fills the pipeline and C's goes past it: both wait for room.
    write(b.phone, 0)
    await until(() => pipeline.bufferedReadings === 2 * BATCH)
    write(c.phone, 0)
    await until(() => pipeline.bufferedReadings === 3 * BATCH)
    for (const { phone } of [a, b, c]) write(phone, 1)

    // A's group commits: A is answered while B's and C's batches still fill the pipeline.
    sink.step()
    expect(await a.phone.expect('sensor_readings_batch_written')).toMatchObject({ batchId: 0 })
    await until(() => sink.pending === 1)
    await sleep(150)
    // A's next batch was not read ahead of B and C, who have waited longer.
    expect(pipeline.bufferedReadings).toBe(2 * BATCH)

    // Room again: every batch is written once, in each phone's order.
    const pump = setInterval(() => sink.step(), 10)
    try {
      for (const { phone } of [b, c]) expect(await phone.expect('sensor_readings_batch_written')).toMatchObject({ batchId: 0 })
      for (const { phone, sessionId } of [a, b, c]) {
        expect(await phone.expect('sensor_readings_batch_written')).toEqual({ sessionId, batchId: 1, totalSensorReadingsWritten: 2 * BATCH })
      }
    } finally {
      clearInterval(pump)
    }
  })
})
