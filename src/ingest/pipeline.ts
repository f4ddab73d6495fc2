import { silentLog, type Log } from '../logger.js'
import { GroupCommitter } from './group-committer.js'
import type { BatchOutcome, BatchSink, IngestObserver, PendingBatch } from './types.js'

export interface IngestPipelineOptions {
  /** One sink per writer; each owns its own database connection. */
  sinks: BatchSink[]
  maxRowsPerGroup: number
  /**
   * A writer with this many readings queued passes sessions that have nothing
   * unanswered to the next writer (default: maxRowsPerGroup).
   */
  spillReadings?: number
  /** Above this many held readings (all writers together) the pipeline reports itself saturated. */
  maxBufferedReadings: number
  log?: Log
  observer?: IngestObserver
}

/**
 * The ingest pipeline: validated batches in, durable outcomes out. It knows
 * nothing of sockets or HTTP. While a session has unanswered batches, its
 * next ones join the same committer, so one session's batches commit in the
 * order they were submitted; different sessions' transactions may overlap
 * on several committers (one COPYs while another waits for its commit).
 */
export class IngestPipeline {
  private readonly committers: GroupCommitter[]
  private readonly sinks: BatchSink[]
  private readonly maxBufferedReadings: number
  private buffered = 0
  /** Readings of a recent batch: how much one woken transport is expected to bring. */
  private typicalBatchReadings = 1
  private readonly drainWaiters = new Set<() => void>()
  private closed = false
  /** Sessions with batches not yet answered, and the committer those batches are in. */
  private readonly unanswered = new Map<number, { committer: GroupCommitter, batches: number }>()
  /** A committer with this many readings queued passes new sessions on. */
  private readonly spillRows: number

  constructor (options: IngestPipelineOptions) {
    if (options.sinks.length === 0) throw new Error('IngestPipeline needs at least one sink')
    const log = (options.log ?? silentLog).child({ component: 'ingest' })
    this.sinks = options.sinks
    this.maxBufferedReadings = options.maxBufferedReadings
    this.spillRows = options.spillReadings ?? options.maxRowsPerGroup
    this.committers = options.sinks.map(sink => new GroupCommitter({
      sink,
      maxRowsPerGroup: options.maxRowsPerGroup,
      log,
      observer: options.observer,
      onSettled: rows => this.release(rows)
    }))
  }

  /** Readings accepted and not yet answered: what the pipeline holds in memory. */
  get bufferedReadings (): number {
    return this.buffered
  }

  get saturated (): boolean {
    return this.buffered >= this.maxBufferedReadings
  }

  submit (batch: PendingBatch): Promise<BatchOutcome> {
    if (this.closed) return Promise.resolve({ status: 'storage_unavailable', message: 'the server is shutting down' })
    this.buffered += batch.readingCount
    this.typicalBatchReadings = batch.readingCount
    let entry = this.unanswered.get(batch.sessionId)
    if (entry) entry.batches++
    else this.unanswered.set(batch.sessionId, entry = { committer: this.pickCommitter(), batches: 1 })
    const outcome = entry.committer.submit(batch)
    const settled = entry
    outcome.then(() => {
      if (--settled.batches === 0 && this.unanswered.get(batch.sessionId) === settled) this.unanswered.delete(batch.sessionId)
    })
    return outcome
  }

  /**
   * Where a session without unanswered batches goes: the first committer whose
   * backlog is below spillReadings, else the least loaded. Few large
   * transactions cost the database less CPU per reading than many small ones,
   * so at moderate load one committer takes everything. But one committer is
   * one database backend: near its own limit every group takes longer, the
   * next gathers more, and acks slow down for everyone while the other cores
   * idle. So the next committer takes work once the first has a backlog of
   * spillReadings, well before a transaction is full.
   */
  private pickCommitter (): GroupCommitter {
    let least = this.committers[0] as GroupCommitter
    for (const committer of this.committers) {
      if (committer.queuedReadings < this.spillRows) return committer
      if (committer.queuedReadings < least.queuedReadings) least = committer
    }
    return least
  }

  /** Calls fn once the buffer is below its limit again (at once if it already is). */
  onceDrained (fn: () => void): void {
    if (!this.saturated) fn()
    else this.drainWaiters.add(fn)
  }

  /** Resolves when every batch submitted so far has an outcome. */
  async idle (): Promise<void> {
    await Promise.all(this.committers.map(committer => committer.idle()))
  }

  /** Refuses new batches, waits for queued ones, and closes the sinks. */
  async close (): Promise<void> {
    this.closed = true
    await this.idle()
    await Promise.all(this.sinks.map(sink => sink.close()))
  }

  /**
   * Wakes paused transports, oldest first, only as many as the freed room
   * takes at a batch each. A woken socket delivers every frame its last read
   * holds (several binary batches), so waking all of them at once, a
   * thousand phones under overload, overshot the bound by a batch or more a
   * socket, and memory grew with the number of phones. While readings are
   * held a later release wakes the next ones; with none held nothing would,
   * so then every waiter is woken.
   */
  private release (rows: number): void {
    this.buffered -= rows
    if (this.saturated || this.drainWaiters.size === 0) return
    let room = this.maxBufferedReadings - this.buffered
    for (const waiter of this.drainWaiters) {
      if (room <= 0 && this.buffered > 0) break
      this.drainWaiters.delete(waiter)
      room -= this.typicalBatchReadings
      waiter()
    }
  }
}
