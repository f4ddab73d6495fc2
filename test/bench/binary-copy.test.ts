import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { BinaryRowWriter, binaryHeader, binaryTrailer, BINARY_ROW_BYTES } from '../../bench/binary-copy.js'
import { COPY_HEADER, COPY_TRAILER } from '../../src/db/readings/pg-copy-sink.js'
import { encodeReadings, ROW_BYTES } from '../../src/ingest/binary-copy.js'

/**
 * The bench's baseline COPY writes its own rows (it must not depend on the
 * service it measures); this holds it to the service's bytes, so the
 * baseline measures the same rows.
 */
describe('the bench\'s binary COPY encoder', () => {
  it('writes the same header, trailer and row size as the service', () => {
    expect(binaryHeader()).toEqual(COPY_HEADER)
    expect(binaryTrailer()).toEqual(COPY_TRAILER)
    expect(BINARY_ROW_BYTES).toBe(ROW_BYTES)
  })

  it('writes the same bytes as the service for the same readings', () => {
    const reading = fc.record({
      ms: fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2100, 0, 1) }),
      sensor: fc.integer({ min: 0, max: 2 }),
      x: fc.double({ noNaN: true, noDefaultInfinity: true }),
      y: fc.double({ noNaN: true, noDefaultInfinity: true }),
      z: fc.double({ noNaN: true, noDefaultInfinity: true })
    })
    fc.assert(fc.property(fc.integer({ min: 1, max: 2 ** 40 }), fc.array(reading, { minLength: 1, maxLength: 20 }), (sessionId, readings) => {
      const writer = BinaryRowWriter.forRows(readings.length)
      for (const r of readings) writer.row(sessionId, r.ms, r.sensor, r.x, r.y, r.z)
      const service = encodeReadings(sessionId, readings.map(r => ({ timestampMicros: r.ms * 1000, sensor: r.sensor, x: r.x, y: r.y, z: r.z })))
      expect(writer.buffer).toEqual(service)
    }))
  })
})
