import { silentLog, type Log } from '../logger.js'
import { GroupCommitter } from './group-committer.js'
import type { BatchOutcome, BatchSink, IngestObserver, PendingBatch } from './types.js'

export interface IngestPipelineOptions {
  /** One sink per writer; each owns its own database connection. */
  sinks: BatchSink[]
  maxRowsPerGroup: number
  /** Above this many held readings (all writers together) the pipeline reports itself saturated. */
  maxBufferedReadings: number
  log?: Log
  observer?: IngestObserver
}

/**
 * The ingest pipeline: validated batches in, durable outcomes out. It knows
 * nothing of sockets or HTTP. Sessions are spread over the writers by id, so
 * one session's batches commit in the order they were submitted, while
 * different sessions' transactions overlap (one COPYs while another waits
 * for its commit to be flushed).
 */
export class IngestPipeline {
  private readonly committers: GroupCommitter[]
  private readonly sinks: BatchSink[]
  private readonly maxBufferedReadings: number
  private buffered = 0
  private readonly drainWaiters = new Set<() => void>()
  private closed = false

  constructor (options: IngestPipelineOptions) {
    if (options.sinks.length === 0) throw new Error('IngestPipeline needs at least one sink')
    const log = (options.log ?? silentLog).child({ component: 'ingest' })
    this.sinks = options.sinks
    this.maxBufferedReadings = options.maxBufferedReadings
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
    const committer = this.committers[batch.sessionId % this.committers.length] as GroupCommitter
    return committer.submit(batch)
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

  private release (rows: number): void {
    this.buffered -= rows
    if (this.saturated || this.drainWaiters.size === 0) return
    const waiters = [...this.drainWaiters]
    this.drainWaiters.clear()
    for (const waiter of waiters) waiter()
  }
}
