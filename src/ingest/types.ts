/** A validated batch waiting to be written: its readings already encoded as binary COPY rows. */
export interface PendingBatch {
  sessionId: number
  batchId: number
  readingCount: number
  rows: Buffer
  /** The content's digest (batch-digest.ts): a resend with another digest is a conflict, not a replay. */
  digest: Buffer
  /** When the server received the batch (epoch ms): against the device span, it gives the clock offset. */
  receivedAtMs: number
  /** Device time span of the batch: its earliest and latest reading timestamp (epoch microseconds). */
  firstReadingMicros: number
  lastReadingMicros: number
}

/** What became of one batch. Totals are the session's running total right after this batch. */
export type BatchOutcome =
  | { status: 'written', totalSensorReadingsWritten: number }
  | { status: 'duplicate', totalSensorReadingsWritten: number }
  /** The batch id is already written with other readings: these were not stored, the first ones stay. */
  | { status: 'conflict' }
  | { status: 'session_not_found' }
  | { status: 'storage_unavailable', message: string }

/** Result of writing a group of batches in one transaction. */
export interface GroupWriteResult {
  /** Running total of each live session before this group's batches. Absent: the session is not active. */
  totalsBefore: Map<number, number>
  /** `${sessionId}:${batchId}` of the batches this transaction wrote; the others were already in the ledger. */
  inserted: Set<string>
  /**
   * Positions in the group of the batches (of live sessions) whose digest differs from the
   * one their batch id was written with: earlier, or by an earlier copy in this group.
   */
  conflicts: Set<number>
}

/**
 * Where batches go. One call is one atomic write: either every batch it
 * reports as inserted is durably committed, or it throws and nothing is.
 * A batch id may appear more than once in a group (a phone resending before
 * its ack): the first copy is the one written, and each later copy is a
 * replay or, with another digest, a conflict. Conflicts are counted per
 * session in the same write.
 */
export interface BatchSink {
  writeGroup: (batches: readonly PendingBatch[]) => Promise<GroupWriteResult>
  close: () => Promise<void>
}

/** A batch this transaction wrote, as batchWritten reports it. */
export interface WrittenBatch {
  sessionId: number
  batchId: number
  /** The session's running total right after this batch. */
  totalSensorReadingsWritten: number
}

/**
 * Hooks for metrics and the live view; every member optional. Within one
 * group, batchWritten is called for each batch written and then
 * groupCommitted once, synchronously, after the commit.
 */
export interface IngestObserver {
  groupCommitted?: (info: { batches: number, rows: number, seconds: number }) => void
  groupFailed?: (info: { batches: number, err: unknown }) => void
  batchWritten?: (readings: number, batch: WrittenBatch) => void
  batchReplayed?: () => void
  batchConflicted?: () => void
}

export const batchKey = (sessionId: number, batchId: number) => `${sessionId}:${batchId}`
