import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { encodeReadings, ROW_BYTES, type EncodableReading } from '../../src/ingest/binary-copy.js'

const PG_EPOCH_MICROS = Date.UTC(2000, 0, 1) * 1000

/** PostgreSQL's binary COPY row, field by field, the plain way: what the row writer must produce. */
function referenceRow (sessionId: number, { timestampMicros, sensor, x, y, z }: EncodableReading): Buffer {
  const row = Buffer.alloc(ROW_BYTES)
  let at = row.writeInt16BE(6, 0)
  at = row.writeInt32BE(8, at)
  at = row.writeBigInt64BE(BigInt(sessionId), at)
  at = row.writeInt32BE(8, at)
  at = row.writeBigInt64BE(BigInt(timestampMicros - PG_EPOCH_MICROS), at)
  at = row.writeInt32BE(2, at)
  at = row.writeInt16BE(sensor, at)
  for (const value of [x, y, z]) {
    at = row.writeInt32BE(8, at)
    at = row.writeDoubleBE(value, at)
  }
  return row
}

describe('binary COPY rows', () => {
  it('are written as PostgreSQL reads them, whatever the session, time and values', () => {
    const reading = fc.record({
      timestampMicros: fc.integer({ min: PG_EPOCH_MICROS, max: Number.MAX_SAFE_INTEGER }),
      sensor: fc.integer({ min: 0, max: 2 }),
      x: fc.double({ noNaN: true }),
      y: fc.double({ noNaN: true }),
      z: fc.double({ noNaN: true })
    })
    fc.assert(fc.property(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), fc.array(reading, { minLength: 1, maxLength: 20 }), (sessionId, readings) => {
      expect(encodeReadings(sessionId, readings)).toEqual(Buffer.concat(readings.map(r => referenceRow(sessionId, r))))
    }), { numRuns: 2000 })
  })
})
