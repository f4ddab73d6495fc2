import { describe, expect, it } from 'vitest'
import { IngestPipeline } from '../../src/ingest/pipeline.js'
import type { PendingBatch } from '../../src/ingest/types.js'
import { MemorySink } from './memory-sink.js'

const batch = (sessionId: number, batchId: number, readingCount = 10): PendingBatch =>
  ({ sessionId, batchId, readingCount, rows: Buffer.alloc(0) })

function setup (options: { writers?: number, maxRowsPerGroup?: number, maxBufferedReadings?: number } = {}) {
  const sinks = Array.from({ length: options.writers ?? 1 }, () => new MemorySink())
  const pipeline = new IngestPipeline({
    sinks,
    maxRowsPerGroup: options.maxRowsPerGroup ?? 1000,
    maxBufferedReadings: options.maxBufferedReadings ?? 1_000_000
  })
  return { sinks, pipeline, sink: sinks[0] as MemorySink }
}

describe('IngestPipeline', () => {
  it('groups batches that arrive while a transaction runs into the next one', async () => {
    const { pipeline, sink } = setup()
    sink.open(1)
    let release!: () => void
    sink.gate = new Promise(resolve => { release = resolve })
    const outcomes = Array.from({ length: 5 }, (_, i) => pipeline.submit(batch(1, i)))
    release()
    expect(await Promise.all(outcomes)).toEqual([10, 20, 30, 40, 50].map(total => ({ status: 'written', totalSensorReadingsWritten: total })))
    // The first batch started a transaction alone; the four that queued behind it shared the next.
    expect(sink.groups).toEqual([1, 4])
  })

  it('caps a group at maxRowsPerGroup', async () => {
    const { pipeline, sink } = setup({ maxRowsPerGroup: 25 })
    sink.open(1)
    let release!: () => void
    sink.gate = new Promise(resolve => { release = resolve })
    const outcomes = Array.from({ length: 7 }, (_, i) => pipeline.submit(batch(1, i)))
    release()
    await Promise.all(outcomes)
    expect(sink.groups).toEqual([1, 2, 2, 2])
  })

  it('writes a batch repeated within one group once and acks both with running totals', async () => {
    const { pipeline, sink } = setup()
    sink.open(1)
    let release!: () => void
    sink.gate = new Promise(resolve => { release = resolve })
    const first = pipeline.submit(batch(1, 0))
    const rest = [pipeline.submit(batch(1, 1)), pipeline.submit(batch(1, 1)), pipeline.submit(batch(1, 2)), pipeline.submit(batch(1, 0))]
    release()
    expect(await first).toEqual({ status: 'written', totalSensorReadingsWritten: 10 })
    expect(await Promise.all(rest)).toEqual([
      { status: 'written', totalSensorReadingsWritten: 20 },
      { status: 'duplicate', totalSensorReadingsWritten: 20 },
      { status: 'written', totalSensorReadingsWritten: 30 },
      { status: 'duplicate', totalSensorReadingsWritten: 30 }
    ])
    expect(sink.totals.get(1)).toBe(30)
  })

  it('answers session_not_found for an ended session and storage_unavailable when the sink fails', async () => {
    const { pipeline, sink } = setup()
    sink.open(1)
    expect(await pipeline.submit(batch(2, 0))).toEqual({ status: 'session_not_found' })
    sink.failNext = 1
    expect(await pipeline.submit(batch(1, 0))).toEqual({ status: 'storage_unavailable', message: 'connection lost' })
    expect(sink.ledger.size).toBe(0)
    expect(await pipeline.submit(batch(1, 0))).toEqual({ status: 'written', totalSensorReadingsWritten: 10 })
  })

  it('keeps each session on one writer, so its batches commit in order', async () => {
    const { pipeline, sinks } = setup({ writers: 3 })
    for (const sink of sinks) for (let s = 1; s <= 6; s++) sink.open(s)
    const outcomes = []
    for (let i = 0; i < 4; i++) for (let s = 1; s <= 6; s++) outcomes.push(pipeline.submit(batch(s, i)))
    await Promise.all(outcomes)
    for (let s = 1; s <= 6; s++) {
      const owners = sinks.filter(sink => [...sink.ledger].some(key => key.startsWith(`${s}:`)))
      expect(owners).toHaveLength(1)
      expect(owners[0]?.totals.get(s)).toBe(40)
    }
  })

  it('reports saturation past maxBufferedReadings and calls back once drained', async () => {
    const { pipeline, sink } = setup({ maxBufferedReadings: 25 })
    sink.open(1)
    let release!: () => void
    sink.gate = new Promise(resolve => { release = resolve })
    const outcomes = [pipeline.submit(batch(1, 0)), pipeline.submit(batch(1, 1)), pipeline.submit(batch(1, 2))]
    expect(pipeline.saturated).toBe(true)
    let drained = false
    pipeline.onceDrained(() => { drained = true })
    expect(drained).toBe(false)
    release()
    await Promise.all(outcomes)
    expect(drained).toBe(true)
    expect(pipeline.bufferedReadings).toBe(0)
  })

  it('refuses batches after close, having finished the queued ones', async () => {
    const { pipeline, sink } = setup()
    sink.open(1)
    const queued = pipeline.submit(batch(1, 0))
    await pipeline.close()
    expect(await queued).toMatchObject({ status: 'written' })
    expect(await pipeline.submit(batch(1, 1))).toMatchObject({ status: 'storage_unavailable' })
  })
})
