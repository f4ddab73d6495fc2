import { Decoder } from 'cbor-x'
import { BINARY_BATCH_COLUMNS } from '../schemas/binary-batch.js'
import { MAX_BATCH_ID, type ValidationIssue } from '../schemas/ws-events.js'
import type { ColumnarReadings } from './columnar-readings.js'

/** What a binary frame held. */
export type BinaryBatchFrame =
  | { ok: true, batchId: number, readings: ColumnarReadings }
  /** Not one CBOR map {event: "write_sensor_readings_batch", data: map}: answered like a malformed text frame. */
  | { ok: false, kind: 'frame', message: string }
  /** A batch whose data is malformed (a missing or mistyped column, columns of different lengths), with the paths. */
  | { ok: false, kind: 'data', batchId: number | null, issues: ValidationIssue[] }

// Maps decode to Map objects: keys chosen by the sender never touch an object's prototype.
const decoder = new Decoder({ mapsAsObjects: false, useRecords: false })

const FLOAT64_COLUMN = 'must be an RFC 8746 typed array of float64 (tag 86, or 82 big-endian)'
const COLUMN_RULES: Record<typeof BINARY_BATCH_COLUMNS[number], { accepts: (value: unknown) => boolean, message: string }> = {
  timestampBase: {
    accepts: value => Number.isSafeInteger(value),
    message: 'must be an integer: microseconds since 1970-01-01T00:00:00Z'
  },
  timestamp: {
    accepts: value => value instanceof Int32Array,
    message: 'must be an RFC 8746 typed array of sint32 (tag 78, or 74 big-endian): microseconds after timestampBase'
  },
  sensor: {
    // A plain byte string is the same bytes as tag 64; many encoders write one for a Uint8Array.
    accepts: value => value instanceof Uint8Array,
    message: 'must be a byte string or an RFC 8746 uint8 typed array (tag 64) of sensor codes'
  },
  xAxis: { accepts: value => value instanceof Float64Array, message: FLOAT64_COLUMN },
  yAxis: { accepts: value => value instanceof Float64Array, message: FLOAT64_COLUMN },
  zAxis: { accepts: value => value instanceof Float64Array, message: FLOAT64_COLUMN }
}

const isBatchId = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= MAX_BATCH_ID

/** A uint64 that fits a JS number is the same integer to us; cbor-x returns the larger ones as bigint. */
const asNumber = (value: unknown): unknown => typeof value === 'bigint' && value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value

/**
 * Decodes a binary write_sensor_readings_batch frame (docs/protocol.md,
 * "Binary batches") into its batch id and columns, checking the frame's
 * shape only: the readings' values are the batch validation's to judge, by
 * the rules JSON readings meet.
 */
export function decodeBinaryBatch (frame: Uint8Array): BinaryBatchFrame {
  let item: unknown
  try {
    item = decoder.decode(frame)
  } catch {
    return { ok: false, kind: 'frame', message: 'A binary frame is one CBOR item (RFC 8949); this one does not decode' }
  }
  if (!(item instanceof Map) || item.get('event') !== 'write_sensor_readings_batch' || !(item.get('data') instanceof Map)) {
    return { ok: false, kind: 'frame', message: 'A binary frame is a CBOR map {"event": "write_sensor_readings_batch", "data": map}; other events are sent as JSON text' }
  }
  const data = item.get('data') as Map<unknown, unknown>
  const issues: ValidationIssue[] = []
  const batchId = asNumber(data.get('batch_id'))
  if (!isBatchId(batchId)) issues.push({ path: ['batch_id'], message: `must be an integer from 0 to ${MAX_BATCH_ID}` })
  const readings = data.get('sensor_readings')
  if (!(readings instanceof Map)) {
    issues.push({ path: ['sensor_readings'], message: `must be a map of columns: ${BINARY_BATCH_COLUMNS.join(', ')}` })
    return { ok: false, kind: 'data', batchId: isBatchId(batchId) ? batchId : null, issues }
  }
  const columns: Record<string, unknown> = {}
  for (const name of BINARY_BATCH_COLUMNS) {
    const value = asNumber(readings.get(name))
    columns[name] = value
    if (!COLUMN_RULES[name].accepts(value)) issues.push({ path: ['sensor_readings', name], message: COLUMN_RULES[name].message })
  }
  if (issues.length === 0) {
    const count = (columns.timestamp as Int32Array).length
    for (const name of BINARY_BATCH_COLUMNS.slice(2)) {
      const length = (columns[name] as ArrayLike<number>).length
      if (length !== count) issues.push({ path: ['sensor_readings', name], message: `has ${length} values where timestamp has ${count}` })
    }
  }
  if (issues.length > 0) return { ok: false, kind: 'data', batchId: isBatchId(batchId) ? batchId : null, issues }
  return { ok: true, batchId: batchId as number, readings: columns as unknown as ColumnarReadings }
}
