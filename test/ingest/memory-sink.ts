import { batchKey, type BatchSink, type GroupWriteResult, type PendingBatch } from '../../src/ingest/types.js'

/** The database's part: sinks sharing one store are writers on one database. */
export class MemoryStore {
  readonly totals = new Map<number, number>()
  /** Batch key to the digest it was written with; null stands for a batch written before digests. */
  readonly ledger = new Map<string, Buffer | null>()
  /** Conflicting resends per session, like sessions.batch_conflicts. */
  readonly conflicts = new Map<number, number>()
}

/** A BatchSink that keeps the ledger and totals in memory, with the same contract as PgCopySink. */
export class MemorySink implements BatchSink {
  readonly totals: Map<number, number>
  readonly ledger: Map<string, Buffer | null>
  readonly conflicts: Map<number, number>
  readonly groups: number[] = []
  /** Session ids of each group this sink wrote, in order. */
  readonly groupSessions: number[][] = []
  failNext = 0
  /** Holds every write until released, to let batches pile up behind a running group. */
  gate: Promise<void> | undefined

  constructor (store = new MemoryStore()) {
    this.totals = store.totals
    this.ledger = store.ledger
    this.conflicts = store.conflicts
  }

  open (sessionId: number): void {
    this.totals.set(sessionId, 0)
  }

  end (sessionId: number): void {
    this.totals.delete(sessionId)
  }

  async writeGroup (batches: readonly PendingBatch[]): Promise<GroupWriteResult> {
    await this.gate
    if (this.failNext > 0) {
      this.failNext--
      throw new Error('connection lost')
    }
    this.groups.push(batches.length)
    this.groupSessions.push(batches.map(batch => batch.sessionId))
    const totalsBefore = new Map<number, number>()
    const inserted = new Set<string>()
    const conflicts = new Set<number>()
    for (const [position, batch] of batches.entries()) {
      const total = this.totals.get(batch.sessionId)
      if (total === undefined) continue
      if (!totalsBefore.has(batch.sessionId)) totalsBefore.set(batch.sessionId, total)
      const key = batchKey(batch.sessionId, batch.batchId)
      // Whether written before or by an earlier copy in this group, the ledger holds the content to match.
      if (this.ledger.has(key)) {
        const stored = this.ledger.get(key)
        if (stored && !stored.equals(batch.digest)) {
          conflicts.add(position)
          this.conflicts.set(batch.sessionId, (this.conflicts.get(batch.sessionId) ?? 0) + 1)
        }
        continue
      }
      this.ledger.set(key, batch.digest)
      inserted.add(key)
      this.totals.set(batch.sessionId, total + batch.readingCount)
    }
    return { totalsBefore, inserted, conflicts }
  }

  async close (): Promise<void> {}
}
