import { z } from 'zod'
import { reportSummary } from '../../src/schemas/session-report.js'

const issues = z.array(z.strictObject({ path: z.array(z.union([z.string(), z.number()])), message: z.string() }))
const id = z.number().int().positive()
const count = z.number().int().min(0)
const isoDate = z.string().refine(text => !Number.isNaN(Date.parse(text)), 'an ISO date')

/**
 * Every event the server may send, with exactly the fields the README lists
 * (PROTOCOL.md's events plus storage_unavailable and error). Written here
 * from the documentation, not imported from src, so a drift is caught.
 */
export const serverFrame = z.discriminatedUnion('event', [
  z.strictObject({ event: z.literal('session_created'), data: z.strictObject({ sessionId: id, createdAt: isoDate, expiresAt: isoDate }) }),
  z.strictObject({ event: z.literal('session_already_exist'), data: z.strictObject({ sessionId: id, createdAt: isoDate }) }),
  z.strictObject({ event: z.literal('sensor_readings_batch_written'), data: z.strictObject({ sessionId: id, batchId: count, totalSensorReadingsWritten: count }) }),
  z.strictObject({
    event: z.literal('invalid_sensor_readings_batch_size'),
    data: z.strictObject({ sessionId: id, batchId: z.number().nullable(), expected: count, received: count })
  }),
  z.strictObject({
    event: z.literal('invalid_sensor_reading_schema'),
    data: z.strictObject({ sessionId: id.nullable(), batchId: z.number().nullable(), issues: issues.min(1) })
  }),
  z.strictObject({
    event: z.literal('session_destroyed'),
    data: z.strictObject({
      sessionId: id,
      destroyedAt: isoDate,
      reason: z.enum(['client', 'expired', 'admin']),
      totalSensorReadingsWritten: count,
      integrity: z.enum(['ok', 'mismatch', 'unreported']),
      report: reportSummary.nullable()
    })
  }),
  z.strictObject({ event: z.literal('session_not_found'), data: z.strictObject({}) }),
  z.strictObject({
    event: z.literal('storage_unavailable'),
    data: z.strictObject({ sessionId: id, batchId: count, message: z.string(), retryable: z.literal(true) })
  }),
  z.strictObject({ event: z.literal('batch_conflict'), data: z.strictObject({ sessionId: id, batchId: count, message: z.string() }) }),
  z.strictObject({
    event: z.literal('error'),
    data: z.strictObject({
      code: z.enum(['invalid_json', 'invalid_frame', 'unknown_event', 'invalid_event_data', 'binary_frames_not_supported',
        'metadata_too_large', 'storage_unavailable', 'internal_error']),
      message: z.string(),
      issues: issues.optional()
    })
  })
])
export type ServerFrame = z.infer<typeof serverFrame>
