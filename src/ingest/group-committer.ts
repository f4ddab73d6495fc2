import type { Log } from '../logger.js'
import { batchKey, type BatchOutcome, type BatchSink, type IngestObserver, type PendingBatch } from './types.js'

interface Waiting {
  batch: PendingBatch
  resolve: (outcome: BatchOutcome) => void
}

export interface GroupCommitterOptions {
  sink: BatchSink
  maxRowsPerGroup: number
  log: Log
  observer?: IngestObserver
  /** Called with the readings count of each group once its batches have outcomes. */
  onSettled?: (readings: number) => void
}

/**
 * Group commit: while one transaction runs, batches queue up; the next
 * transaction takes all of them (up to maxRowsPerGroup), so the per-commit
 * cost (round trips, WAL flush) is shared by every phone that sent meanwhile.
 * Batches of a session always go through the same committer, in order.
 */
export class GroupCommitter {
  private readonly queue: Waiting[] = []
  private queuedRows = 0
  private running: Promise<void> | undefined
  private readonly options: GroupCommitterOptions

  constructor (options: GroupCommitterOptions) {
    this.options = options
  }

  get queuedReadings (): number {
    return this.queuedRows
  }

  submit (batch: PendingBatch): Promise<BatchOutcome> {
    return new Promise(resolve => {
      this.queue.push({ batch, resolve })
      this.queuedRows += batch.readingCount
      this.running ??= this.drainQueue()
    })
  }

  /** Resolves when every batch submitted so far has an outcome. */
  async idle (): Promise<void> {
    while (this.running) await this.running
  }

  private async drainQueue (): Promise<void> {
    try {
      while (this.queue.length > 0) await this.commitNextGroup()
    } finally {
      this.running = undefined
    }
  }

  private takeGroup (): { group: Waiting[], rows: number } {
    let rows = 0
    let count = 0
    while (count < this.queue.length) {
      const next = (this.queue[count] as Waiting).batch.readingCount
      if (count > 0 && rows + next > this.options.maxRowsPerGroup) break
      rows += next
      count++
    }
    this.queuedRows -= rows
    return { group: this.queue.splice(0, count), rows }
  }

  private async commitNextGroup (): Promise<void> {
    const { group, rows } = this.takeGroup()
    try {
      await this.commitGroup(group)
    } finally {
      this.options.onSettled?.(rows)
    }
  }

  private async commitGroup (group: Waiting[]): Promise<void> {
    const started = performance.now()
    let result
    try {
      // Every copy goes to the sink, a batch resent while its first copy is in the same group
      // included: the sink writes the first and tells a differing later copy (a conflict) apart.
      result = await this.options.sink.writeGroup(group.map(waiting => waiting.batch))
    } catch (err) {
      this.options.log.warn({ err, batches: group.length }, 'Batch group could not be committed.')
      this.options.observer?.groupFailed?.({ batches: group.length, err })
      const message = (err as Error)?.message || 'the database did not accept the write'
      for (const waiting of group) waiting.resolve({ status: 'storage_unavailable', message })
      return
    }
    const seconds = (performance.now() - started) / 1000
    let rows = 0
    const running = new Map(result.totalsBefore)
    const written = new Set<string>()
    for (const [position, { batch, resolve }] of group.entries()) {
      const before = running.get(batch.sessionId)
      if (before === undefined) {
        resolve({ status: 'session_not_found' })
        continue
      }
      const key = batchKey(batch.sessionId, batch.batchId)
      if (result.inserted.has(key) && !written.has(key)) {
        written.add(key)
        const total = before + batch.readingCount
        running.set(batch.sessionId, total)
        rows += batch.readingCount
        this.options.observer?.batchWritten?.(batch.readingCount, { sessionId: batch.sessionId, batchId: batch.batchId, totalSensorReadingsWritten: total })
        resolve({ status: 'written', totalSensorReadingsWritten: total })
      } else if (result.conflicts.has(position)) {
        this.options.log.warn({ sessionId: batch.sessionId, batchId: batch.batchId }, 'Batch resent with other readings; not written.')
        this.options.observer?.batchConflicted?.()
        resolve({ status: 'conflict' })
      } else {
        this.options.observer?.batchReplayed?.()
        resolve({ status: 'duplicate', totalSensorReadingsWritten: before })
      }
    }
    this.options.observer?.groupCommitted?.({ batches: group.length, rows, seconds })
    this.options.log.trace({ batches: group.length, rows, seconds }, 'Batch group committed.')
  }
}
