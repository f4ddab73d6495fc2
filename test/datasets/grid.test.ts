import { describe, expect, it } from 'vitest'
import { GridInterpolator, type WideBatch } from '../../src/datasets/grid.js'
import { LabelCursor, type LabelSpan } from '../../src/datasets/label-cursor.js'
import { interpolationTolerance, syntheticReadings, toChunks, truth, type SyntheticSession } from './synthetic.js'

const START = Date.UTC(2024, 4, 1, 8, 0, 0) * 1000
const GAP = { sensor: 1, fromUs: START + 4_000_000, toUs: START + 6_000_000 }
const SESSION: SyntheticSession = { startUs: START + 3_000, seconds: 10, offsetsUs: [0, 2_000, 7_000], gap: GAP }
// Three times the 10 ms median: the report's gap rule.
const THRESHOLDS = [30_000, 30_000, 30_000]

interface Row { us: number, values: number[], label: string | null, segment: number }

function rowsOf (batches: WideBatch[]): Row[] {
  return batches.flatMap(batch => Array.from({ length: batch.length }, (_, i) => ({
    us: batch.ts[i]!,
    values: batch.values.map(column => column[i]!),
    label: batch.label[i] === -1 ? null : batch.labels[batch.label[i]!]!,
    segment: batch.segment[i]!
  })))
}

function run (session: SyntheticSession, options: { chunk?: number, rateHz?: number, spans?: LabelSpan[], sensors?: boolean[], batchRows?: number } = {}) {
  const grid = new GridInterpolator({
    rateHz: options.rateHz ?? 50,
    sensors: options.sensors ?? [true, true, true],
    gapThresholdUs: THRESHOLDS,
    labels: new LabelCursor(options.spans ?? []),
    batchRows: options.batchRows ?? 64
  })
  const batches: WideBatch[] = []
  for (const chunk of toChunks(syntheticReadings(session), options.chunk ?? 997)) batches.push(...grid.push(chunk))
  batches.push(...grid.finish())
  return { rows: rowsOf(batches), grid }
}

describe('the wide layout\'s grid', () => {
  it('interpolates every axis of every sensor within the stated tolerance on a 50 Hz grid aligned to the second', () => {
    const { rows } = run(SESSION)
    expect(rows.length).toBeGreaterThan(300)
    for (const row of rows) {
      expect((row.us - START) % 20_000).toBe(0)
      row.values.forEach((value, channel) => {
        const expected = truth(Math.floor(channel / 3), channel % 3, row.us)
        expect(Math.abs(value - expected), `channel ${channel} at ${row.us - START} us`).toBeLessThanOrEqual(interpolationTolerance(channel))
      })
    }
  })

  it('writes no row in a gap, and a gap ends a segment', () => {
    const { rows, grid } = run(SESSION)
    // The gyroscope's last reading before the gap and its first after it: nothing between them.
    const gyroscope = syntheticReadings(SESSION).filter(reading => reading.sensor === GAP.sensor).map(reading => reading.us)
    const lastBefore = Math.max(...gyroscope.filter(us => us < GAP.fromUs))
    const firstAfter = Math.min(...gyroscope.filter(us => us >= GAP.toUs))
    expect(rows.filter(row => row.us > lastBefore && row.us < firstAfter)).toEqual([])
    expect(new Set(rows.map(row => row.segment))).toEqual(new Set([0, 1]))
    const first = rows.filter(row => row.segment === 0)
    const second = rows.filter(row => row.segment === 1)
    // Rows start at the first grid instant every sensor covers (the magnetometer starts 10 ms in) and end at the last.
    expect(first[0]!.us).toBe(START + 20_000)
    expect(first.at(-1)!.us).toBeLessThan(GAP.fromUs)
    expect(first.at(-1)!.us).toBeGreaterThanOrEqual(GAP.fromUs - 40_000)
    expect(second[0]!.us).toBeGreaterThanOrEqual(GAP.toUs)
    expect(second[0]!.us).toBeLessThan(GAP.toUs + 40_000)
    expect(second.at(-1)!.us).toBeLessThanOrEqual(SESSION.startUs + 10e6)
    // Within a segment, the grid is whole: one row every 20 ms.
    for (const part of [first, second]) part.forEach((row, i) => i > 0 && expect(row.us - part[i - 1]!.us).toBe(20_000))
    expect(grid.segments.count).toBe(2)
    expect(grid.segments.listed.map(s => s.rows)).toEqual([first.length, second.length])
  })

  it('gives the same rows whatever the chunk and batch sizes', () => {
    const reference = run(SESSION).rows
    for (const chunk of [1, 3, 64, 5000]) expect(run(SESSION, { chunk, batchRows: 7 }).rows).toEqual(reference)
  })

  it('labels each row by the span it falls in, interval labels and none', () => {
    const spans: LabelSpan[] = [
      { startUs: START, endUs: START + 2_000_000, label: 'walking' },
      { startUs: START + 2_000_000, endUs: START + 3_000_000, label: null },
      { startUs: START + 3_000_000, endUs: START + 11_000_000, label: 'cycling' }
    ]
    const { rows } = run(SESSION, { spans })
    for (const row of rows) {
      const expected = row.us < START + 2_000_000 ? 'walking' : row.us < START + 3_000_000 ? null : 'cycling'
      expect(row.label).toBe(expected)
    }
  })

  it('keeps the channels of a sensor the session lacks empty, and rows bounded by the others', () => {
    const session = { ...SESSION, sensors: [0, 1] }
    const { rows } = run(session, { sensors: [true, true, false] })
    expect(rows.length).toBeGreaterThan(300)
    for (const row of rows) expect(row.values.slice(6).every(Number.isNaN)).toBe(true)
    // The first row no longer waits for the magnetometer.
    expect(rows[0]!.us).toBe(START + 20_000)
  })

  it('puts a grid instant that falls on a reading at that reading\'s values', () => {
    const aligned = { startUs: START, seconds: 1, offsetsUs: [0, 0, 0] as [number, number, number] }
    const { rows } = run(aligned)
    for (const row of rows) row.values.forEach((value, channel) => expect(value).toBe(truth(Math.floor(channel / 3), channel % 3, row.us)))
  })

  it('counts readings of one sensor sharing a timestamp once, the least, whatever their order', () => {
    const readings = syntheticReadings({ startUs: START, seconds: 0.1, offsetsUs: [0, 0, 0] })
    const duplicate = { ...readings[3]!, x: readings[3]!.x - 1 }
    const orders = [[...readings.slice(0, 4), duplicate, ...readings.slice(4)], [...readings.slice(0, 3), duplicate, ...readings.slice(3)]]
    const results = orders.map(order => {
      const grid = new GridInterpolator({ rateHz: 100, sensors: [true, true, true], gapThresholdUs: THRESHOLDS, labels: new LabelCursor([]), batchRows: 16 })
      const batches = [...grid.push(toChunks(order, 2)[0]!), ...toChunks(order, 2).slice(1).flatMap(chunk => grid.push(chunk)), ...grid.finish()]
      return rowsOf(batches)
    })
    expect(results[0]).toEqual(results[1])
    expect(results[0]![1]!.values[0]).toBe(duplicate.x)
  })

  it('holds memory to the readings a row still needs while one sensor is in a long gap', () => {
    const long = { startUs: START, seconds: 120, offsetsUs: [0, 2_000, 7_000] as [number, number, number], gap: { sensor: 2, fromUs: START + 1e6, toUs: START + 119e6 } }
    const grid = new GridInterpolator({ rateHz: 50, sensors: [true, true, true], gapThresholdUs: THRESHOLDS, labels: new LabelCursor([]), batchRows: 256 })
    let most = 0
    for (const chunk of toChunks(syntheticReadings(long), 500)) {
      grid.push(chunk)
      const queues = (grid as unknown as { queues: Array<{ size: number }> }).queues
      most = Math.max(most, ...queues.map(queue => queue.size))
    }
    grid.finish()
    // A few readings per sensor beyond the 30 ms threshold: not the 12,000 of the gap.
    expect(most).toBeLessThan(600)
    expect(grid.segments.count).toBe(2)
  })
})
