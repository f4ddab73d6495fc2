import { z } from 'zod'
import { EARLIEST_READING_MS, MAX_CLOCK_LEAD_MS, sensorReading, validationIssues, type ValidationIssue } from '../schemas/ws-events.js'
import { SENSORS } from '../schemas/sensors.js'
import { batchDigest } from './batch-digest.js'
import { copyRowWriter, ROW_BYTES, encodeReadings, type EncodableReading } from './binary-copy.js'
import { isColumnar, readingCount, readingsAsJson, type BatchReadings, type ColumnarReadings } from './columnar-readings.js'
import { epochMillisToMicros, parseIsoTimestampMicros } from '../schemas/timestamps.js'

const SENSOR_CODES = new Map<unknown, number>(SENSORS.map((name, code) => [name, code]))
const readingsSchema = z.array(sensorReading)

/** A valid batch as binary COPY rows, with the device time span it covers. */
export interface EncodedBatch {
  rows: Buffer
  firstReadingMicros: number
  lastReadingMicros: number
}

export type BatchValidation =
  | ({ ok: true, readingCount: number, digest: Buffer } & EncodedBatch)
  | { ok: false, kind: 'size', expected: number, received: number }
  | { ok: false, kind: 'schema', issues: ValidationIssue[] }

/**
 * Checks a batch's readings (exact count, then every field) and, when all is
 * well, encodes them as binary COPY rows for the session, with the rows'
 * digest (taken here, before the batch queues for a transaction). All or
 * nothing: one bad reading rejects the batch.
 *
 * The zod schema in schemas/ws-events.ts is the definition. Valid batches,
 * the common case, take a hand-written path that checks the same rules while
 * encoding, about ten times cheaper than zod; any batch it refuses is judged
 * again by zod, which also names the issues. A test holds the two to the same
 * verdicts on generated readings.
 *
 * Columns decoded from a binary frame meet the same rules in their own fast
 * path; a refused columnar batch is judged by zod as the JSON readings of the
 * same values, so both encodings get the same answers.
 */
export function validateBatch (sessionId: number, readings: BatchReadings, expectedSize: number): BatchValidation {
  const received = readingCount(readings)
  if (received !== expectedSize) return { ok: false, kind: 'size', expected: expectedSize, received }
  const encoded = isColumnar(readings)
    ? encodeColumnsIfValid(sessionId, readings) ?? validateWithSchema(sessionId, readingsAsJson(readings))
    : encodeIfValid(sessionId, readings) ?? validateWithSchema(sessionId, readings)
  if ('ok' in encoded) return encoded
  return { ok: true, readingCount: received, digest: batchDigest(encoded.rows), ...encoded }
}

function validateWithSchema (sessionId: number, readings: unknown[]): EncodedBatch | Extract<BatchValidation, { ok: false }> {
  const parsed = readingsSchema.safeParse(readings)
  if (!parsed.success) {
    return { ok: false, kind: 'schema', issues: validationIssues(parsed.error, ['sensor_readings']) }
  }
  const encodable: EncodableReading[] = parsed.data.map(reading => ({
    timestampMicros: reading.timestamp,
    sensor: SENSOR_CODES.get(reading.sensor) as number,
    x: reading.xAxis,
    y: reading.yAxis,
    z: reading.zAxis
  }))
  let first = Infinity
  let last = -Infinity
  for (const { timestampMicros } of encodable) {
    if (timestampMicros < first) first = timestampMicros
    if (timestampMicros > last) last = timestampMicros
  }
  return { rows: encodeReadings(sessionId, encodable), firstReadingMicros: first, lastReadingMicros: last }
}

const isFiniteNumber = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value)

/** The fast path: encoded rows when every reading is valid, else undefined. */
export function encodeIfValid (sessionId: number, readings: unknown[]): EncodedBatch | undefined {
  const earliest = EARLIEST_READING_MS * 1000
  const latest = (Date.now() + MAX_CLOCK_LEAD_MS) * 1000
  const buffer = Buffer.allocUnsafe(readings.length * ROW_BYTES)
  const writer = copyRowWriter(buffer, sessionId)
  let first = Infinity
  let last = -Infinity
  for (let i = 0; i < readings.length; i++) {
    const reading = readings[i]
    if (typeof reading !== 'object' || reading === null || Array.isArray(reading)) return undefined
    const { timestamp, sensor, xAxis, yAxis, zAxis } = reading as Record<string, unknown>
    let micros: number | undefined
    if (typeof timestamp === 'string') micros = parseIsoTimestampMicros(timestamp)
    else if (isFiniteNumber(timestamp)) micros = epochMillisToMicros(timestamp)
    if (micros === undefined || micros < earliest || micros > latest) return undefined
    const code = SENSOR_CODES.get(sensor)
    if (code === undefined || !isFiniteNumber(xAxis) || !isFiniteNumber(yAxis) || !isFiniteNumber(zAxis)) return undefined
    writer.write(i, micros, code, xAxis, yAxis, zAxis)
    if (micros < first) first = micros
    if (micros > last) last = micros
  }
  return { rows: buffer, firstReadingMicros: first, lastReadingMicros: last }
}

/** The columnar fast path: encoded rows when every reading is valid, else undefined. */
export function encodeColumnsIfValid (sessionId: number, columns: ColumnarReadings): EncodedBatch | undefined {
  const earliest = EARLIEST_READING_MS * 1000
  const latest = (Date.now() + MAX_CLOCK_LEAD_MS) * 1000
  const { timestampBase, timestamp, sensor, xAxis, yAxis, zAxis } = columns
  const count = timestamp.length
  const buffer = Buffer.allocUnsafe(count * ROW_BYTES)
  const writer = copyRowWriter(buffer, sessionId)
  let first = Infinity
  let last = -Infinity
  for (let i = 0; i < count; i++) {
    const micros = timestampBase + (timestamp[i] as number)
    const code = sensor[i] as number
    const x = xAxis[i] as number
    const y = yAxis[i] as number
    const z = zAxis[i] as number
    if (!(micros >= earliest && micros <= latest) || code >= SENSORS.length ||
      !Number.isFinite(x) || !Number.isFinite(y) || !Number.isFinite(z)) return undefined
    writer.write(i, micros, code, x, y, z)
    if (micros < first) first = micros
    if (micros > last) last = micros
  }
  return { rows: buffer, firstReadingMicros: first, lastReadingMicros: last }
}
