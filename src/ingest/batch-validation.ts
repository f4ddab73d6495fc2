import { z } from 'zod'
import { SENSORS, sensorReading, type ValidationIssue } from '../schemas/ws-events.js'
import { encodeReadings, type EncodableReading } from './binary-copy.js'

const SENSOR_CODES = new Map<string, number>(SENSORS.map((name, code) => [name, code]))
const readingsSchema = z.array(sensorReading)

export type BatchValidation =
  | { ok: true, rows: Buffer, readingCount: number }
  | { ok: false, kind: 'size', expected: number, received: number }
  | { ok: false, kind: 'schema', issues: ValidationIssue[] }

/** At most this many issues are reported for one batch, so a garbage batch cannot produce a huge answer. */
const MAX_ISSUES = 50

/**
 * Checks a batch's readings (exact count, then every field) and, when all is
 * well, encodes them as binary COPY rows for the session. All or nothing:
 * one bad reading rejects the batch.
 */
export function validateBatch (sessionId: number, readings: unknown[], expectedSize: number): BatchValidation {
  if (readings.length !== expectedSize) return { ok: false, kind: 'size', expected: expectedSize, received: readings.length }
  const parsed = readingsSchema.safeParse(readings)
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, MAX_ISSUES).map(issue => ({
      path: ['sensor_readings', ...issue.path.map(part => typeof part === 'number' ? part : String(part))],
      message: issue.message
    }))
    return { ok: false, kind: 'schema', issues }
  }
  const encodable: EncodableReading[] = parsed.data.map(reading => ({
    timestampMicros: reading.timestamp,
    sensor: SENSOR_CODES.get(reading.sensor) as number,
    x: reading.xAxis,
    y: reading.yAxis,
    z: reading.zAxis
  }))
  return { ok: true, rows: encodeReadings(sessionId, encodable), readingCount: encodable.length }
}
