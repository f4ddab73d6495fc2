import { describe, expect, it } from 'vitest'
import { IngestPipeline } from '../../src/ingest/pipeline.js'
import type { PendingBatch } from '../../src/ingest/types.js'
import { MemorySink, MemoryStore } from './memory-sink.js'

/** A batch whose content is named by `content`: copies with the same content digest the same. */
const batch = (sessionId: number, batchId: number, readingCount = 10, content = 'a'): PendingBatch =>
  ({ sessionId, batchId, readingCount, rows: Buffer.alloc(0), digest: Buffer.from(content), receivedAtMs: 0, firstReadingMicros: 0, lastReadingMicros: 0 })

function setup (options: { writers?: number, maxRowsPerGroup?: number, spillReadings?: number, maxBufferedReadings?: number } = {}) {
  const store = new MemoryStore()
  const sinks = Array.from({ length: options.writers ?? 1 }, () => new MemorySink(store))
  const pipeline = new IngestPipeline({
    sinks,
    maxRowsPerGroup: options.maxRowsPerGroup ?? 1000,
    spillReadings: options.spillReadings,
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

  it('acks a resend with the same content and refuses one with other content as a conflict, across groups', async () => {
    const conflicts: number[] = []
    const store = new MemoryStore()
    const sink = new MemorySink(store)
    const pipeline = new IngestPipeline({ sinks: [sink], maxRowsPerGroup: 1000, maxBufferedReadings: 1_000_000, observer: { batchConflicted: () => conflicts.push(1) } })
    sink.open(1)
    expect(await pipeline.submit(batch(1, 0, 10, 'a'))).toEqual({ status: 'written', totalSensorReadingsWritten: 10 })
    expect(await pipeline.submit(batch(1, 0, 10, 'a'))).toEqual({ status: 'duplicate', totalSensorReadingsWritten: 10 })
    expect(await pipeline.submit(batch(1, 0, 10, 'b'))).toEqual({ status: 'conflict' })
    expect(await pipeline.submit(batch(1, 1, 10, 'b'))).toEqual({ status: 'written', totalSensorReadingsWritten: 20 })
    // The first content stays: resending it is still a replay.
    expect(await pipeline.submit(batch(1, 0, 10, 'a'))).toEqual({ status: 'duplicate', totalSensorReadingsWritten: 20 })
    expect(store.ledger.get('1:0')).toEqual(Buffer.from('a'))
    expect(store.totals.get(1)).toBe(20)
    expect(store.conflicts.get(1)).toBe(1)
    expect(conflicts).toHaveLength(1)
  })

  it('writes the first copy of a batch id within one group and refuses a later copy with other content', async () => {
    const { pipeline, sink } = setup()
    sink.open(1)
    sink.open(2)
    let release!: () => void
    sink.gate = new Promise(resolve => { release = resolve })
    // Another session's batch takes the first transaction; the four copies queue into the next one.
    const blocker = pipeline.submit(batch(2, 0))
    const outcomes = [
      pipeline.submit(batch(1, 0, 10, 'a')),
      pipeline.submit(batch(1, 0, 10, 'b')),
      pipeline.submit(batch(1, 0, 10, 'a')),
      pipeline.submit(batch(1, 1, 10, 'c'))
    ]
    release()
    await blocker
    expect(await Promise.all(outcomes)).toEqual([
      { status: 'written', totalSensorReadingsWritten: 10 },
      { status: 'conflict' },
      { status: 'duplicate', totalSensorReadingsWritten: 10 },
      { status: 'written', totalSensorReadingsWritten: 20 }
    ])
    expect(sink.groups).toEqual([1, 4])
    expect(sink.conflicts.get(1)).toBe(1)
  })

  it('compares copies in one group with the content already written, not with each other', async () => {
    const { pipeline, sink } = setup()
    sink.open(1)
    sink.open(2)
    await pipeline.submit(batch(1, 0, 10, 'a'))
    await pipeline.idle()
    let release!: () => void
    sink.gate = new Promise(resolve => { release = resolve })
    const blocker = pipeline.submit(batch(2, 0))
    const outcomes = [pipeline.submit(batch(1, 0, 10, 'b')), pipeline.submit(batch(1, 0, 10, 'b')), pipeline.submit(batch(1, 0, 10, 'a'))]
    release()
    await blocker
    expect(await Promise.all(outcomes)).toEqual([
      { status: 'conflict' },
      { status: 'conflict' },
      { status: 'duplicate', totalSensorReadingsWritten: 10 }
    ])
    expect(sink.groups).toEqual([1, 1, 3])
    expect(sink.conflicts.get(1)).toBe(2)
  })

  it('acks any resend of a batch written before digests were kept', async () => {
    const { pipeline, sink } = setup()
    sink.open(1)
    sink.totals.set(1, 10)
    sink.ledger.set('1:0', null)
    expect(await pipeline.submit(batch(1, 0, 10, 'b'))).toEqual({ status: 'duplicate', totalSensorReadingsWritten: 10 })
    expect(sink.conflicts.size).toBe(0)
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

  it('spills new sessions at spillReadings queued, while a group may still hold maxRowsPerGroup', async () => {
    const { pipeline, sinks } = setup({ writers: 2, maxRowsPerGroup: 1000, spillReadings: 30 })
    const [first, second] = sinks as [MemorySink, MemorySink]
    for (let s = 1; s <= 6; s++) first.open(s)
    let release!: () => void
    first.gate = new Promise(resolve => { release = resolve })
    // Session 1 commits (gated); sessions 2-4 queue behind it on the first writer (30 readings),
    // so sessions 5 and 6 start on the second writer although the first's next group has room.
    const outcomes = [1, 2, 3, 4, 5, 6].map(s => pipeline.submit(batch(s, 0)))
    release()
    await Promise.all(outcomes)
    expect(first.groupSessions).toEqual([[1], [2, 3, 4]])
    expect(second.groupSessions.flat()).toEqual([5, 6])
  })

  it('uses the next writer only once the first has a backlog, keeping each session in order', async () => {
    // maxRowsPerGroup 100: a writer with a backlog of 100 readings (10 batches) passes new sessions on.
    const { pipeline, sinks } = setup({ writers: 2, maxRowsPerGroup: 100 })
    const [first, second] = sinks as [MemorySink, MemorySink]
    for (let s = 1; s <= 30; s++) first.open(s)

    // Light load: each batch is answered before the next arrives; the second writer stays idle.
    for (let i = 0; i < 5; i++) await pipeline.submit(batch(1, i))
    expect(second.groups).toEqual([])

    // A burst while the first writer is stuck: its backlog grows past 100 readings, then new sessions spill.
    let release!: () => void
    first.gate = new Promise(resolve => { release = resolve })
    const outcomes: Array<Promise<unknown>> = []
    for (let i = 0; i < 3; i++) for (let s = 2; s <= 30; s++) outcomes.push(pipeline.submit(batch(s, i)).then(o => [s, o]))
    release()
    const answers = await Promise.all(outcomes) as Array<[number, { totalSensorReadingsWritten: number }]>
    expect(second.groups.length).toBeGreaterThan(0)

    // A session's batches never split across writers while any is unanswered, so each
    // session's acks carry increasing running totals and the totals are exact.
    for (let s = 2; s <= 30; s++) {
      expect(answers.filter(([id]) => id === s).map(([, o]) => o.totalSensorReadingsWritten)).toEqual([10, 20, 30])
      expect(first.totals.get(s)).toBe(30)
      const writers = sinks.filter(sink => sink.groupSessions.some(group => group.includes(s)))
      expect(writers).toHaveLength(1)
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

  it('wakes paused transports only as the room freed takes them, oldest first, and all once nothing is held', async () => {
    const { pipeline, sink } = setup({ maxBufferedReadings: 30 })
    sink.open(1)
    sink.open(2)
    let release!: () => void
    sink.gate = new Promise(resolve => { release = resolve })
    // Session 1's batch is committing (gated) while session 2's three wait behind it: 40 readings held.
    const first = pipeline.submit(batch(1, 0))
    const queued = [pipeline.submit(batch(2, 0)), pipeline.submit(batch(2, 1)), pipeline.submit(batch(2, 2))]
    expect(pipeline.saturated).toBe(true)
    const woken: number[] = []
    for (let i = 0; i < 5; i++) pipeline.onceDrained(() => woken.push(i))
    release()
    await first
    // 10 readings settled, 30 still held: no room yet, nobody woken.
    expect(woken).toEqual([])
    sink.gate = new Promise(resolve => { release = resolve })
    release()
    await Promise.all(queued)
    // Nothing held any more: every waiter is woken, in the order they waited.
    expect(woken).toEqual([0, 1, 2, 3, 4])
  })

  it('wakes as many waiters as the room takes while readings are still held', async () => {
    const { pipeline, sink } = setup({ maxBufferedReadings: 40, maxRowsPerGroup: 10 })
    sink.open(1)
    // Each group (one batch: maxRowsPerGroup 10) waits for its own permit.
    const permits: Array<() => void> = []
    const write = sink.writeGroup.bind(sink)
    sink.writeGroup = async batches => {
      await new Promise<void>(resolve => permits.push(resolve))
      return await write(batches)
    }
    const outcomes = Array.from({ length: 5 }, (_, i) => pipeline.submit(batch(1, i)))
    const woken: number[] = []
    for (let i = 0; i < 6; i++) pipeline.onceDrained(() => woken.push(i))
    const commitOne = async (which: number) => {
      while (permits.length === 0) await new Promise(resolve => setImmediate(resolve))
      permits.shift()!()
      await outcomes[which]
    }
    await commitOne(0) // 40 held: still saturated
    expect(woken).toEqual([])
    await commitOne(1) // 30 held: room for one batch of 10
    expect(woken).toEqual([0])
    await commitOne(2) // 20 held: room for two
    expect(woken).toEqual([0, 1, 2])
    await commitOne(3) // 10 held: room for the other three
    expect(woken).toEqual([0, 1, 2, 3, 4, 5])
    await commitOne(4)
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
