import { readFile } from 'node:fs/promises'
import { encode } from 'cbor-x'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeBinaryBatch } from '../../src/ingest/binary-batch-frame.js'
import { validateBatch, type BatchValidation } from '../../src/ingest/batch-validation.js'
import type { ColumnarReadings } from '../../src/ingest/columnar-readings.js'
import { writeBatchData } from '../../src/schemas/ws-events.js'
import { SENSORS } from '../../src/schemas/sensors.js'

/** A reading by its values: what both encodings carry. */
interface Values { micros: number, code: number, x: number, y: number, z: number }

const NOW_MICROS = Date.now() * 1000
const HOUR = 3600e6

/** A binary frame as a phone's CBOR library writes it (cbor-x: typed arrays as RFC 8746 tags, little-endian). */
function binaryFrame (batchId: number, base: number, readings: Values[]): Buffer {
  return encode({
    event: 'write_sensor_readings_batch',
    data: {
      batch_id: batchId,
      sensor_readings: {
        timestampBase: base,
        timestamp: Int32Array.from(readings, r => r.micros - base),
        sensor: Uint8Array.from(readings, r => r.code),
        xAxis: Float64Array.from(readings, r => r.x),
        yAxis: Float64Array.from(readings, r => r.y),
        zAxis: Float64Array.from(readings, r => r.z)
      }
    }
  })
}

/** JSON number text; JSON has no infinities, but 1e999 parses to one, as a phone's overflowing number would (and JSON.stringify would write -0 as 0). */
const jsonNumber = (value: number) => value === Infinity ? '1e999' : value === -Infinity ? '-1e999' : Object.is(value, -0) ? '-0' : JSON.stringify(value)

/** The same readings as a JSON text frame: epoch milliseconds, sensor names (an unknown code as an unknown name). */
function jsonFrame (batchId: number, readings: Values[]): string {
  const items = readings.map(r => `{"timestamp":${jsonNumber(r.micros / 1000)},"sensor":${JSON.stringify(SENSORS[r.code] ?? `Sensor${r.code}`)},` +
    `"xAxis":${jsonNumber(r.x)},"yAxis":${jsonNumber(r.y)},"zAxis":${jsonNumber(r.z)}}`)
  return `{"event":"write_sensor_readings_batch","data":{"batch_id":${batchId},"sensor_readings":[${items.join(',')}]}}`
}

/** Both frames through the server's own steps: decode, then the batch validation the intake runs. */
function verdicts (batchId: number, base: number, readings: Values[], expectedSize = readings.length): { binary: BatchValidation, json: BatchValidation } {
  const decoded = decodeBinaryBatch(binaryFrame(batchId, base, readings))
  if (!decoded.ok) throw new Error(`binary frame refused: ${JSON.stringify(decoded)}`)
  const data = writeBatchData.parse(JSON.parse(jsonFrame(batchId, readings)).data)
  return {
    binary: validateBatch(7, decoded.readings, expectedSize),
    json: validateBatch(7, data.sensor_readings, expectedSize)
  }
}

// Timestamps: mostly plausible, some before 2000 or more than a day ahead; deltas within sint32.
const base = fc.oneof(
  fc.integer({ min: NOW_MICROS - 1000 * HOUR, max: NOW_MICROS }),
  fc.integer({ min: 946_684_800e6 - 10e6, max: 946_684_800e6 + 10e6 }),
  fc.integer({ min: NOW_MICROS + 23 * HOUR, max: NOW_MICROS + 25 * HOUR }),
  fc.integer({ min: -1e15, max: 8e15 })
)
const delta = fc.oneof(fc.integer({ min: -2_000_000, max: 2_000_000 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }))
const code = fc.oneof({ weight: 8, arbitrary: fc.constantFrom(0, 1, 2) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) })
// Any double JSON can carry (NaN it cannot: tested on its own below).
const axis = fc.oneof({ weight: 8, arbitrary: fc.double({ min: -1e3, max: 1e3, noNaN: true }) }, { weight: 1, arbitrary: fc.double({ noNaN: true }) })
const batch = fc.record({
  base,
  readings: fc.array(fc.record({ delta, code, x: axis, y: axis, z: axis }), { minLength: 1, maxLength: 8 })
}).map(({ base, readings }) => ({ base, readings: readings.map(r => ({ micros: base + r.delta, code: r.code, x: r.x, y: r.y, z: r.z })) }))

describe('binary batches', () => {
  it('get the verdict, rows, digest, issue paths and messages of the same readings sent as JSON', () => {
    let accepted = 0
    let refused = 0
    fc.assert(fc.property(batch, fc.integer({ min: 0, max: 2 ** 31 - 1 }), ({ base, readings }, batchId) => {
      const { binary, json } = verdicts(batchId, base, readings)
      expect(binary).toEqual(json)
      if (binary.ok) accepted++
      else refused++
    }), { numRuns: 2000 })
    // Both verdicts must be well represented, or the comparison proves little.
    expect(accepted).toBeGreaterThan(200)
    expect(refused).toBeGreaterThan(200)
  })

  it('are held to the batch size like JSON ones', () => {
    const readings = [{ micros: NOW_MICROS, code: 0, x: 1, y: 2, z: 3 }]
    const { binary, json } = verdicts(3, NOW_MICROS, readings, 375)
    expect(binary).toEqual({ ok: false, kind: 'size', expected: 375, received: 1 })
    expect(json).toEqual(binary)
  })

  it('refuse a NaN axis, which JSON cannot carry, with its path', () => {
    const decoded = decodeBinaryBatch(binaryFrame(0, NOW_MICROS, [{ micros: NOW_MICROS, code: 1, x: 0, y: Number.NaN, z: 0 }]))
    if (!decoded.ok) throw new Error('not decoded')
    expect(validateBatch(1, decoded.readings, 1)).toEqual({
      ok: false, kind: 'schema', issues: [{ path: ['sensor_readings', 0, 'yAxis'], message: 'Invalid input: expected number, received NaN' }]
    })
  })

  it('read big-endian typed arrays, byte strings of sensor codes and integer or bigint bases alike', () => {
    const readings: Values[] = [{ micros: NOW_MICROS + 5, code: 2, x: 1.5, y: -0, z: 5e-324 }, { micros: NOW_MICROS - 7, code: 0, x: 9.81, y: 1e308, z: -3 }]
    const be = (bytesPerValue: number, values: number[], write: (view: DataView, at: number, value: number) => void) => {
      const view = new DataView(new ArrayBuffer(values.length * bytesPerValue))
      values.forEach((value, i) => write(view, i * bytesPerValue, value))
      return new Uint8Array(view.buffer)
    }
    // Tags 74 (sint32 big-endian) and 82 (float64 big-endian) around byte strings, as RFC 8746 defines them.
    const byteString = (bytes: Uint8Array) => Buffer.concat([Buffer.from([0x58, bytes.length]), bytes]) // major type 2, one-byte length
    const tagged = (tag: number, bytes: Uint8Array) => Buffer.concat([Buffer.from([0xd8, tag]), byteString(bytes)])
    const float64be = (values: number[]) => tagged(82, be(8, values, (view, at, value) => view.setFloat64(at, value)))
    const columns = Buffer.concat([
      Buffer.from([0xa6]), // map of 6 pairs
      encode('timestampBase'), Buffer.from([0x1b]), Buffer.from(new BigUint64Array([BigInt(NOW_MICROS)]).buffer).reverse(), // uint64, big-endian argument
      encode('timestamp'), tagged(74, be(4, [5, -7], (view, at, value) => view.setInt32(at, value))),
      encode('sensor'), byteString(Uint8Array.from([2, 0])),
      encode('xAxis'), float64be(readings.map(r => r.x)),
      encode('yAxis'), float64be(readings.map(r => r.y)),
      encode('zAxis'), float64be(readings.map(r => r.z))
    ])
    // {"event": ..., "data": {"batch_id": 4, "sensor_readings": columns}}: the data map's head says 2 pairs.
    const data = Buffer.concat([Buffer.from([0xa2]), encode('batch_id'), encode(4), encode('sensor_readings'), columns])
    const frame = Buffer.concat([Buffer.from([0xa2]), encode('event'), encode('write_sensor_readings_batch'), encode('data'), data])
    const decoded = decodeBinaryBatch(frame)
    if (!decoded.ok) throw new Error(JSON.stringify(decoded))
    expect(decoded.batchId).toBe(4)
    const little = decodeBinaryBatch(binaryFrame(4, NOW_MICROS, readings))
    if (!little.ok) throw new Error('not decoded')
    expect(validateBatch(1, decoded.readings, 2)).toEqual(validateBatch(1, little.readings, 2))
    expect(validateBatch(1, decoded.readings, 2).ok).toBe(true)
  })

  it('name what is wrong with a frame or its columns', () => {
    expect(decodeBinaryBatch(Buffer.from([0xff, 0x00]))).toMatchObject({ ok: false, kind: 'frame' })
    expect(decodeBinaryBatch(encode({ event: 'create_session', data: {} }))).toMatchObject({ ok: false, kind: 'frame' })
    expect(decodeBinaryBatch(Buffer.concat([binaryFrame(1, NOW_MICROS, [{ micros: NOW_MICROS, code: 0, x: 1, y: 1, z: 1 }]), Buffer.from([0])])))
      .toMatchObject({ ok: false, kind: 'frame' })
    const frameWith = (data: Record<string, unknown>) => encode({ event: 'write_sensor_readings_batch', data })
    expect(decodeBinaryBatch(frameWith({ batch_id: -1, sensor_readings: [] }))).toEqual({
      ok: false,
      kind: 'data',
      batchId: null,
      issues: [
        { path: ['batch_id'], message: 'must be an integer from 0 to 2147483647' },
        { path: ['sensor_readings'], message: 'must be a map of columns: timestampBase, timestamp, sensor, xAxis, yAxis, zAxis' }
      ]
    })
    const good: ColumnarReadings = {
      timestampBase: NOW_MICROS,
      timestamp: new Int32Array(2),
      sensor: new Uint8Array(2),
      xAxis: new Float64Array(2),
      yAxis: new Float64Array(2),
      zAxis: new Float64Array(2)
    }
    const wrong = frameWith({ batch_id: 9, sensor_readings: { ...good, timestampBase: 1.5, timestamp: [0, 0], xAxis: new Float32Array(2) } })
    expect(decodeBinaryBatch(wrong)).toEqual({
      ok: false,
      kind: 'data',
      batchId: 9,
      issues: [
        { path: ['sensor_readings', 'timestampBase'], message: 'must be an integer: microseconds since 1970-01-01T00:00:00Z' },
        { path: ['sensor_readings', 'timestamp'], message: 'must be an RFC 8746 typed array of sint32 (tag 78, or 74 big-endian): microseconds after timestampBase' },
        { path: ['sensor_readings', 'xAxis'], message: 'must be an RFC 8746 typed array of float64 (tag 86, or 82 big-endian)' }
      ]
    })
    expect(decodeBinaryBatch(frameWith({ batch_id: 9, sensor_readings: { ...good, zAxis: new Float64Array(3) } }))).toEqual({
      ok: false, kind: 'data', batchId: 9, issues: [{ path: ['sensor_readings', 'zAxis'], message: 'has 3 values where timestamp has 2' }]
    })
    // A key named __proto__ is just a key: it cannot lend the map the columns it lacks.
    const proto = Buffer.concat([Buffer.from([0xa2]), encode('event'), encode('write_sensor_readings_batch'), encode('data'),
      Buffer.from([0xa2]), encode('batch_id'), encode(1), encode('__proto__'), encode(new Map([['sensor_readings', good]]))])
    expect(decodeBinaryBatch(proto)).toMatchObject({ ok: false, kind: 'data', batchId: 1, issues: [{ path: ['sensor_readings'] }] })
  })

  it('decode the byte-level example of docs/protocol.md to the readings it describes', async () => {
    const protocol = await readFile(new URL('../../docs/protocol.md', import.meta.url), 'utf8')
    const block = /A frame of two readings[\s\S]*?```text\n([^`]*)```/.exec(protocol)?.[1]
    if (!block) throw new Error('example not found')
    // Each line: hex bytes, then the comment.
    const bytes = block.split('\n').flatMap(line => {
      const tokens = line.trim().split(/\s+/)
      const hex = tokens.slice(0, tokens.findIndex(token => !/^[0-9a-f]{2}$/.test(token)) >>> 0)
      return hex.map(token => parseInt(token, 16))
    })
    expect(bytes).toHaveLength(200)
    const decoded = decodeBinaryBatch(Uint8Array.from(bytes))
    if (!decoded.ok) throw new Error(JSON.stringify(decoded))
    const micros = Date.UTC(2026, 10, 24, 20, 0, 0, 10) * 1000
    expect(decoded.batchId).toBe(0)
    expect(decoded.readings.timestampBase).toBe(micros)
    expect([...decoded.readings.timestamp]).toEqual([0, 10_000])
    expect([...decoded.readings.sensor]).toEqual([0, 1])
    expect([...decoded.readings.xAxis, ...decoded.readings.yAxis, ...decoded.readings.zAxis]).toEqual([0.12, 0.5, 9.79, -0.25, 0.4, 0])
  })
})
