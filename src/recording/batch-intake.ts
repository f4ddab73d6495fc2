import type { SessionState } from '../db/sessions/session-lifecycle.js'
import { validateBatch } from '../ingest/batch-validation.js'
import { readingCount, type BatchReadings } from '../ingest/columnar-readings.js'
import type { IngestPipeline } from '../ingest/pipeline.js'
import type { ValidationIssue } from '../schemas/ws-events.js'
import type { RecordingObserver } from './observer.js'

/**
 * How many readings a batch may hold: the WebSocket protocol fixes the count
 * (every batch is exactly `batchSize`), a push transport takes any count up
 * to a cap.
 */
export type BatchSizeRule = { exactly: number } | { atMost: number }

export interface BatchInput {
  /** The session the transport attached the batch to; undefined when it has none. */
  session: SessionState | undefined
  batchId: number
  /** Readings as the client sent them, unvalidated: JSON values, or the columns of a binary frame. */
  readings: BatchReadings
  /** When the server received the batch (epoch ms). */
  receivedAtMs: number
  size: BatchSizeRule
}

/** What became of one batch, for the transport to answer in its own terms. */
export type BatchVerdict =
  | { status: 'written' | 'duplicate', sessionId: number, totalSensorReadingsWritten: number }
  | { status: 'invalid_size', sessionId: number, expected: number, received: number }
  /** Issue paths start at the reading's index in `readings`. */
  | { status: 'invalid_schema', sessionId: number, issues: ValidationIssue[] }
  | { status: 'session_not_found' }
  | { status: 'storage_unavailable', sessionId: number, message: string }
  /** The batch id is already written with other readings: not stored, and a resend will not be either. */
  | { status: 'conflict', sessionId: number }

/**
 * The one way a batch enters ingest, whatever transport brought it:
 * validation, encoding and submission to the pipeline behind one call, and
 * every rejection counted in one place.
 */
export class BatchIntake {
  constructor (private readonly pipeline: IngestPipeline, private readonly observer?: RecordingObserver) {}

  /** True while the pipeline holds its maximum of readings: transports stop reading until onceDrained. */
  get saturated (): boolean {
    return this.pipeline.saturated
  }

  onceDrained (fn: () => void): void {
    this.pipeline.onceDrained(fn)
  }

  /**
   * Validates and submits a batch. Validation happens before this returns, so
   * batches submitted one after another reach the pipeline in that order.
   */
  submit ({ session, batchId, readings, receivedAtMs, size }: BatchInput): Promise<BatchVerdict> {
    if (!session) return Promise.resolve(this.rejected('session_not_found', { status: 'session_not_found' }))
    const sessionId = session.id
    const expected = 'exactly' in size ? size.exactly : size.atMost
    const received = readingCount(readings)
    const sizeOk = 'exactly' in size ? received === size.exactly : received >= 1 && received <= size.atMost
    if (!sizeOk) return Promise.resolve(this.rejected('batch_size', { status: 'invalid_size', sessionId, expected, received }))
    const validation = validateBatch(sessionId, readings, received)
    if (!validation.ok) {
      // Paths relative to the readings array: each transport names the array its own way.
      const issues = validation.kind === 'schema' ? validation.issues.map(({ path, message }) => ({ path: path.slice(1), message })) : []
      return Promise.resolve(this.rejected('schema', { status: 'invalid_schema', sessionId, issues }))
    }
    return this.pipeline.submit({
      sessionId,
      batchId,
      readingCount: validation.readingCount,
      rows: validation.rows,
      digest: validation.digest,
      receivedAtMs,
      firstReadingMicros: validation.firstReadingMicros,
      lastReadingMicros: validation.lastReadingMicros
    }).then((outcome): BatchVerdict => {
      switch (outcome.status) {
        case 'written':
        case 'duplicate':
          return { status: outcome.status, sessionId, totalSensorReadingsWritten: outcome.totalSensorReadingsWritten }
        case 'session_not_found':
          return this.rejected('session_not_found', { status: 'session_not_found' })
        case 'storage_unavailable':
          return this.rejected('storage_unavailable', { status: 'storage_unavailable', sessionId, message: outcome.message })
        case 'conflict':
          return { status: 'conflict', sessionId }
      }
    })
  }

  /** Counts a batch the transport refused before it reached here (a malformed frame). */
  refusedByTransport (): void {
    this.observer?.batchRejected?.('schema')
  }

  private rejected<V extends BatchVerdict> (reason: Parameters<NonNullable<RecordingObserver['batchRejected']>>[0], verdict: V): V {
    this.observer?.batchRejected?.(reason)
    return verdict
  }
}
