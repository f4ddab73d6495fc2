import { z } from 'zod'
import { describe, expect, it } from 'vitest'
import { encodeIfValid, validateBatch } from '../../src/ingest/batch-validation.js'
import { encodeReadings } from '../../src/ingest/binary-copy.js'
import { sensorReading } from '../../src/schemas/ws-events.js'
import { SENSORS } from '../../src/schemas/sensors.js'

/** Deterministic PRNG (mulberry32), so a failure reproduces. */
function random (seed: number) {
  return () => {
    seed = (seed + 0x6D2B79F5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const now = Date.now()
const TIMESTAMPS: unknown[] = [
  now - 1000, now - 0.5, 946684800000, 946684799999.999, now + 23 * 3600_000, now + 25 * 3600_000,
  '2025-06-01T12:00:00Z', '2025-06-01T12:00:00.123456789+02:00', '2025-06-01T12:00:00,5-0130', '2025-06-01t12:00:00z',
  '2025-06-01 12:00:00.1Z', '2024-02-29T00:00:00Z', '2025-02-29T00:00:00Z', '2025-04-31T00:00:00Z', '2025-06-01T12:00:00',
  '2025-06-01T12:00:00.Z', '2025-06-01T12:00:00.1234567890Z', '2025-06-01T24:00:00Z', '2025-06-01T12:60:00Z', '2025-06-01T12:00:60Z',
  '2025-06-01T12:00:00+24:00', '2025-06-01T12:00:00+02:60', '2025-06-01T12:00:00+2:00', '2025-06-01T12:00:00+0200', '1999-12-31T23:59:59.999999Z',
  '+2025-06-01T12:00:00Z', '2025-6-01T12:00:00Z', '２025-06-01T12:00:00Z', 'NaN', '', Number.NaN, Number.POSITIVE_INFINITY, null, undefined, true, {}, [now]
]
const SENSOR_VALUES: unknown[] = [...SENSORS, 'accelerometer', 'Barometer', '', 0, null, undefined]
const AXES: unknown[] = [0, -1.5, 1e308, 5e-324, -0, Number.MAX_VALUE, Number.NaN, Number.POSITIVE_INFINITY, 'NaN', '1', null, undefined, [], {}, true]
const SHAPES: unknown[] = [null, 'reading', 42, [], [1, 2, 3]]

function pick<T> (next: () => number, values: T[]): T {
  return values[Math.floor(next() * values.length)] as T
}

function randomReading (next: () => number): unknown {
  if (next() < 0.03) return pick(next, SHAPES)
  const reading: Record<string, unknown> = {
    timestamp: next() < 0.5 ? now - Math.floor(next() * 1e9) : pick(next, TIMESTAMPS),
    sensor: next() < 0.7 ? pick(next, [...SENSORS]) : pick(next, SENSOR_VALUES),
    xAxis: next() < 0.7 ? (next() - 0.5) * 20 : pick(next, AXES),
    yAxis: next() < 0.8 ? next() : pick(next, AXES),
    zAxis: next() < 0.8 ? -next() : pick(next, AXES)
  }
  if (next() < 0.05) delete reading[pick(next, Object.keys(reading))]
  if (next() < 0.05) reading.extra = 'ignored'
  return reading
}

const schema = z.array(sensorReading)
const SENSOR_CODES = new Map<string, number>(SENSORS.map((name, code) => [name, code]))

describe('batch validation', () => {
  it('takes the fast path exactly when zod accepts, and encodes the same bytes', () => {
    const next = random(20261124)
    let accepted = 0
    for (let i = 0; i < 20_000; i++) {
      const readings = [randomReading(next)]
      const fast = encodeIfValid(42, readings)
      const parsed = schema.safeParse(readings)
      expect(fast !== undefined, JSON.stringify(readings)).toBe(parsed.success)
      if (fast && parsed.success) {
        accepted++
        const [r] = parsed.data as [z.output<typeof sensorReading>]
        expect(fast.firstReadingMicros).toBe(r.timestamp)
        expect(fast.lastReadingMicros).toBe(r.timestamp)
        expect(fast.rows.equals(encodeReadings(42, [{ timestampMicros: r.timestamp, sensor: SENSOR_CODES.get(r.sensor) as number, x: r.xAxis, y: r.yAxis, z: r.zAxis }]))).toBe(true)
      }
    }
    // Both verdicts must be well represented, or the comparison proves little.
    expect(accepted).toBeGreaterThan(5000)
    expect(accepted).toBeLessThan(15_000)
  })

  it('reports the size first, then every bad field with its path', () => {
    expect(validateBatch(1, [{}], 3)).toEqual({ ok: false, kind: 'size', expected: 3, received: 1 })
    const good = { timestamp: now, sensor: 'Gyroscope', xAxis: 1, yAxis: 2, zAxis: 3 }
    const result = validateBatch(1, [good, { ...good, yAxis: 'x' }, { ...good, sensor: 'Sonar', timestamp: 'soon' }], 3)
    expect(result).toMatchObject({ ok: false, kind: 'schema' })
    const paths = result.ok ? [] : 'issues' in result ? result.issues.map(issue => issue.path.join('.')) : []
    expect(paths.sort()).toEqual(['sensor_readings.1.yAxis', 'sensor_readings.2.sensor', 'sensor_readings.2.timestamp'])
    expect(validateBatch(1, [good, good, good], 3)).toMatchObject({ ok: true, readingCount: 3 })
  })

  it('reports the device time span of a batch, whatever the order of its readings', () => {
    const at = (ms: number) => ({ timestamp: ms, sensor: 'Gyroscope', xAxis: 1, yAxis: 2, zAxis: 3 })
    const base = Date.UTC(2026, 10, 24, 12)
    const result = validateBatch(1, [at(base + 20), at(base + 0.5), at(base + 40.25)], 3)
    expect(result).toMatchObject({ ok: true, firstReadingMicros: base * 1000 + 500, lastReadingMicros: base * 1000 + 40_250 })
  })
})
