import { z } from 'zod'
import { SENSORS } from './sensors.js'
import { epochMillisToMicros, parseIsoTimestampMicros } from './timestamps.js'
import { labelEventData, type LabelRefusalCode } from './labels.js'
import type { ReportSummary } from './session-report.js'
import { destroyReason, integrity, sessionMetadata } from './sessions.js'

/** Earliest accepted reading: anything before is a phone with a reset clock. */
export const EARLIEST_READING_MS = Date.UTC(2000, 0, 1)
/** Readings may lead the server clock by at most this much. */
export const MAX_CLOCK_LEAD_MS = 24 * 3600 * 1000

const finite = z.number().refine(Number.isFinite, 'must be a finite number')

/**
 * A reading's timestamp, parsed to microseconds since the epoch and checked
 * against a sane window, so one bad clock cannot create partitions in 1970.
 */
export const readingTimestamp = z.union([
  z.string().transform((text, ctx) => {
    const micros = parseIsoTimestampMicros(text)
    if (micros === undefined) {
      ctx.addIssue({ code: 'custom', message: 'must be an ISO-8601 timestamp with an offset, e.g. 2026-05-01T12:00:00.123Z' })
      return z.NEVER
    }
    return micros
  }),
  finite.transform(epochMillisToMicros)
]).superRefine((micros, ctx) => {
  if (micros < EARLIEST_READING_MS * 1000) {
    ctx.addIssue({ code: 'custom', message: 'is before 2000-01-01' })
  } else if (micros > (Date.now() + MAX_CLOCK_LEAD_MS) * 1000) {
    ctx.addIssue({ code: 'custom', message: 'is more than a day in the future' })
  }
})

export const sensorReading = z.object({
  timestamp: readingTimestamp.describe('ISO-8601 with offset, or epoch milliseconds (fractions allowed)'),
  sensor: z.enum(SENSORS),
  xAxis: finite,
  yAxis: finite,
  zAxis: finite
})
export type ParsedReading = z.output<typeof sensorReading>

export const MAX_BATCH_ID = 2_147_483_647

export const createSessionData = z.object({
  metadata: sessionMetadata.optional()
})

export const writeBatchData = z.object({
  batch_id: z.number().int().min(0).max(MAX_BATCH_ID),
  sensor_readings: z.array(z.unknown())
})

export const destroySessionData = z.object({
  totalSensorReadingsSent: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional()
})

export const clientFrame = z.object({
  event: z.string(),
  data: z.record(z.string(), z.unknown()).default({})
})

export const CLIENT_EVENTS = {
  create_session: createSessionData,
  write_sensor_readings_batch: writeBatchData,
  destroy_session: destroySessionData,
  label: labelEventData
} as const

export interface ValidationIssue {
  path: Array<string | number>
  message: string
}

/** At most this many issues are reported for one frame or message, so garbage cannot produce a huge answer. */
export const MAX_ISSUES = 50

/** A zod failure as the protocol's issues (paths under `prefix`), at most MAX_ISSUES: one rule for every transport. */
export function validationIssues (error: z.ZodError, prefix: Array<string | number> = []): ValidationIssue[] {
  return error.issues.slice(0, MAX_ISSUES).map(issue => ({
    path: [...prefix, ...issue.path.map(part => typeof part === 'number' ? part : String(part))],
    message: issue.message
  }))
}

/** Everything the server sends, by event name. */
export interface ServerEvents {
  session_created: { sessionId: number, createdAt: string, expiresAt: string }
  session_already_exist: { sessionId: number, createdAt: string }
  sensor_readings_batch_written: { sessionId: number, batchId: number, totalSensorReadingsWritten: number }
  invalid_sensor_readings_batch_size: { sessionId: number, batchId: number | null, expected: number, received: number }
  invalid_sensor_reading_schema: { sessionId: number | null, batchId: number | null, issues: ValidationIssue[] }
  session_destroyed: {
    sessionId: number
    destroyedAt: string
    reason: z.infer<typeof destroyReason>
    totalSensorReadingsWritten: number
    integrity: z.infer<typeof integrity>
    /** null when the report could not be computed in time; GET /sessions/:id/report has it later. */
    report: ReportSummary | null
  }
  session_not_found: Record<string, never>
  /** sessionId is null when the phone resumed without create_session and its session could not be looked up. */
  storage_unavailable: { sessionId: number | null, batchId: number, message: string, retryable: true }
  /** The batch id is already written with other readings: this batch was not stored, the first content stays. */
  batch_conflict: { sessionId: number, batchId: number, message: string }
  /** The label is stored (or was already: duplicate); closedLabelId is the open label it ended. Times as stored, ISO-8601 with microseconds. */
  label_recorded: { sessionId: number, labelId: number, startTime: string, endTime: string | null, label: string, duplicate: boolean, closedLabelId: number | null }
  /** The label was not stored; labelId is the stored label in the way (label_overlap). */
  label_refused: { sessionId: number, code: LabelRefusalCode, message: string, labelId: number | null }
  error: { code: ErrorEventCode, message: string, issues?: ValidationIssue[] }
}

export type ErrorEventCode =
  | 'invalid_json'
  | 'invalid_frame'
  | 'unknown_event'
  | 'invalid_event_data'
  | 'binary_frames_not_supported'
  | 'metadata_too_large'
  | 'storage_unavailable'
  | 'internal_error'

export type ServerFrame = { [E in keyof ServerEvents]: { event: E, data: ServerEvents[E] } }[keyof ServerEvents]
