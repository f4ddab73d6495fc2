import { describe, expect, it } from 'vitest'
import { BinaryRowWriter, BINARY_ROW_BYTES, binaryHeader } from '../../bench/binary-copy.js'
import { BATCH_INTERVAL_MS, READINGS_PER_BATCH, ReadingSource, SENSORS } from '../../bench/readings.js'
import { summarizeLatencies } from '../../bench/stats.js'
import { plannedBatches } from '../../bench/baselines.js'
import { validateBatch } from '../../src/ingest/batch-validation.js'
import { decodeBinaryBatch } from '../../src/ingest/binary-batch-frame.js'

describe('ReadingSource', () => {
  const source = new ReadingSource({ startMs: Date.UTC(2025, 0, 1), seed: 7 })

  it('makes batches of 375 readings: 125 samples of 3 sensors at 100 Hz', () => {
    const readings = source.readings(0)
    expect(readings).toHaveLength(READINGS_PER_BATCH)
    expect(READINGS_PER_BATCH).toBe(375)
    expect(BATCH_INTERVAL_MS).toBe(1250)
    for (const sensor of SENSORS) expect(readings.filter(r => r.sensor === sensor)).toHaveLength(125)
    const accelerometer = readings.filter(r => r.sensor === 'Accelerometer').map(r => r.timestamp as number)
    expect(accelerometer[0]).toBe(Date.UTC(2025, 0, 1))
    for (let i = 1; i < accelerometer.length; i++) expect(accelerometer[i]! - accelerometer[i - 1]!).toBe(10)
  })

  it('continues timestamps across batches without gaps or overlaps', () => {
    const last = source.readings(0).at(-1)!.timestamp as number
    const next = source.readings(1)[0]!.timestamp as number
    expect(next - last).toBe(10)
    expect(source.readings(4)[0]!.timestamp).toBe(Date.UTC(2025, 0, 1) + 4 * 1250)
  })

  it('produces smooth, finite, plausible values', () => {
    const readings = [...source.readings(0), ...source.readings(1)]
    const accelerometer = readings.filter(r => r.sensor === 'Accelerometer')
    for (const r of readings) for (const v of [r.xAxis, r.yAxis, r.zAxis]) expect(Number.isFinite(v)).toBe(true)
    // Gravity dominates the accelerometer's y axis.
    const meanY = accelerometer.reduce((sum, r) => sum + r.yAxis, 0) / accelerometer.length
    expect(meanY).toBeGreaterThan(5)
    expect(meanY).toBeLessThan(15)
    // Smooth at 100 Hz: consecutive samples differ by a small fraction of the range.
    for (let i = 1; i < accelerometer.length; i++) {
      expect(Math.abs(accelerometer[i]!.xAxis - accelerometer[i - 1]!.xAxis)).toBeLessThan(0.3)
    }
  })

  it('differs between phones', () => {
    const other = new ReadingSource({ startMs: Date.UTC(2025, 0, 1), seed: 99 })
    expect(other.readings(0)[0]!.xAxis).not.toBe(source.readings(0)[0]!.xAxis)
  })

  it('builds a frame that is the JSON of the same readings', () => {
    for (const format of ['epoch', 'iso'] as const) {
      const frame = JSON.parse(source.frame(3, format))
      expect(frame).toEqual({ event: 'write_sensor_readings_batch', data: { batch_id: 3, sensor_readings: source.readings(3, format) } })
    }
    expect(source.readings(0, 'iso')[0]!.timestamp).toBe('2025-01-01T00:00:00.000Z')
  })

  it('builds a binary frame that the server reads as the same readings as the JSON frame', () => {
    const recent = new ReadingSource({ startMs: Date.now() - 3600_000, seed: 7 })
    const decoded = decodeBinaryBatch(recent.binaryFrame(3))
    if (!decoded.ok) throw new Error(JSON.stringify(decoded))
    expect(decoded.batchId).toBe(3)
    const binary = validateBatch(1, decoded.readings, READINGS_PER_BATCH)
    expect(binary.ok).toBe(true)
    expect(binary).toEqual(validateBatch(1, JSON.parse(recent.frame(3, 'iso')).data.sensor_readings, READINGS_PER_BATCH))
  })

  it('plans the baselines\' batches interleaved as phones send them, or the same batches session by session', () => {
    const plan = { sessions: 3, batches: 8, firstSessionId: 10, startMs: Date.UTC(2025, 0, 1) }
    const key = ({ sessionId, batch }: { sessionId: number, batch: number }) => `${sessionId}:${batch}`
    const arrival = [...plannedBatches(plan)].map(key)
    const bySession = [...plannedBatches(plan, 'session')].map(key)
    expect(arrival).toEqual(['10:0', '11:0', '12:0', '10:1', '11:1', '12:1', '10:2', '11:2'])
    expect(bySession).toEqual(['10:0', '10:1', '10:2', '11:0', '11:1', '11:2', '12:0', '12:1'])
  })

  it('gives forEachRow the same rows as the frame, with sensor indexes', () => {
    const rows: number[][] = []
    source.forEachRow(2, (ms, sensor, x, y, z) => rows.push([ms, sensor, x, y, z]))
    expect(rows.map(([ms, sensor, x, y, z]) => ({ timestamp: ms, sensor: SENSORS[sensor!], xAxis: x, yAxis: y, zAxis: z })))
      .toEqual(source.readings(2))
  })
})

describe('binary COPY rows', () => {
  it('encodes int8, timestamptz (µs since 2000), int2 and three float8', () => {
    const writer = BinaryRowWriter.forRows(1)
    writer.row(2 ** 40 + 5, Date.UTC(2000, 0, 1, 0, 0, 1) + 0.5, 2, 1.5, -2.25, 9.81)
    const row = writer.bytes()
    expect(row).toHaveLength(BINARY_ROW_BYTES)
    expect(row.readInt16BE(0)).toBe(6)
    expect(row.readInt32BE(2)).toBe(8)
    expect(row.readBigInt64BE(6)).toBe(2n ** 40n + 5n)
    expect(row.readBigInt64BE(18)).toBe(1_000_500n)
    expect(row.readInt32BE(26)).toBe(2)
    expect(row.readInt16BE(30)).toBe(2)
    expect(row.readDoubleBE(36)).toBe(1.5)
    expect(row.readDoubleBE(48)).toBe(-2.25)
    expect(row.readDoubleBE(60)).toBe(9.81)
    expect(binaryHeader().subarray(0, 11).toString('latin1')).toBe('PGCOPY\n\xff\r\n\0')
  })
})

describe('summarizeLatencies', () => {
  it('reports nearest-rank percentiles', () => {
    const samples = Array.from({ length: 100 }, (_, i) => i + 1)
    expect(summarizeLatencies(samples)).toEqual({ count: 100, p50: 50, p95: 95, p99: 99, max: 100, mean: 50.5 })
    expect(summarizeLatencies([]).count).toBe(0)
  })
})
