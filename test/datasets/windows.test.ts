import { describe, expect, it } from 'vitest'
import { GridInterpolator, type WideBatch } from '../../src/datasets/grid.js'
import { LabelCursor, type LabelSpan } from '../../src/datasets/label-cursor.js'
import { parseWindowSeconds, WindowCutter, windowShape, type WindowBatch } from '../../src/datasets/windows.js'
import { syntheticReadings, toChunks, type SyntheticSession } from './synthetic.js'

const START = Date.UTC(2024, 4, 1, 8, 0, 0) * 1000
const SESSION: SyntheticSession = { startUs: START + 3_000, seconds: 20, offsetsUs: [0, 2_000, 7_000], gap: { sensor: 0, fromUs: START + 9e6, toUs: START + 10e6 } }
// Walking for the first 6 s, cycling after.
const SPANS: LabelSpan[] = [
  { startUs: START, endUs: START + 6e6, label: 'walking' },
  { startUs: START + 6e6, endUs: START + 21e6, label: 'cycling' }
]

function wideRows (session: SyntheticSession, spans: LabelSpan[]): WideBatch[] {
  const grid = new GridInterpolator({ rateHz: 50, sensors: [true, true, true], gapThresholdUs: [30_000, 30_000, 30_000], labels: new LabelCursor(spans), batchRows: 100 })
  return [...toChunks(syntheticReadings(session), 1000).flatMap(chunk => grid.push(chunk)), ...grid.finish()]
}

function cut (batches: WideBatch[], purity = 0.8) {
  const { samples, step } = windowShape(2.56, 50, 0.5)
  const cutter = new WindowCutter({ samples, step, purity, batchWindows: 5 })
  const windows: WindowBatch[] = [...batches.flatMap(batch => cutter.push(batch)), ...cutter.finish()]
  const flat = windows.flatMap(batch => Array.from({ length: batch.length }, (_, w) => ({
    index: batch.index[w]!,
    segment: batch.segment[w]!,
    startUs: batch.startUs[w]!,
    endUs: batch.endUs[w]!,
    label: batch.label[w] === -1 ? null : batch.labels[batch.label[w]!]!,
    purity: batch.purity[w]!,
    accX: Array.from(batch.values[0]!.subarray(w * samples, (w + 1) * samples))
  })))
  return { flat, counts: cutter.counts, samples, step }
}

describe('windows', () => {
  it('has the UCI HAR shape at 50 Hz: 2.56 s is 128 samples, half overlapping', () => {
    expect(windowShape(2.56, 50, 0.5)).toEqual({ samples: 128, step: 64 })
    expect(parseWindowSeconds('2.56s')).toBe(2.56)
    expect(parseWindowSeconds('2560ms')).toBe(2.56)
    expect(parseWindowSeconds('0s')).toBeUndefined()
    expect(parseWindowSeconds('two')).toBeUndefined()
  })

  it('cuts windows inside segments only, each the consecutive rows of the grid', () => {
    const rows = wideRows(SESSION, SPANS)
    const { flat, samples, step } = cut(rows)
    const all = rows.flatMap(batch => Array.from({ length: batch.length }, (_, i) => ({ us: batch.ts[i]!, segment: batch.segment[i]!, accX: batch.values[0]![i]! })))
    expect(flat.length).toBeGreaterThan(5)
    for (const window of flat) {
      expect(window.endUs - window.startUs).toBe((samples - 1) * 20_000)
      const first = all.findIndex(row => row.us === window.startUs)
      const samplesOfRows = all.slice(first, first + samples)
      expect(samplesOfRows.every(row => row.segment === window.segment)).toBe(true)
      expect(window.accX).toEqual(samplesOfRows.map(row => row.accX))
      // No window reaches into the gap.
      expect(window.endUs < START + 9e6 || window.startUs >= START + 10e6).toBe(true)
    }
    // Windows of a segment start every `step` rows from its first row.
    const segmentStart = all.find(row => row.segment === 1)!.us
    for (const window of flat.filter(w => w.segment === 1)) expect((window.startUs - segmentStart) % (step * 20_000)).toBe(0)
    expect(flat.map(w => w.index)).toEqual(flat.map((_, i) => i))
  })

  it('labels a window by its majority, and drops it when the majority holds less than the purity threshold', () => {
    const { flat, counts } = cut(wideRows(SESSION, SPANS))
    const boundary = START + 6e6
    for (const window of flat) {
      const walking = Math.max(0, Math.min(window.endUs + 20_000, boundary) - window.startUs) / 20_000
      const share = Math.max(walking, 128 - walking) / 128
      expect(share).toBeGreaterThanOrEqual(0.8)
      expect(window.label).toBe(walking > 64 ? 'walking' : 'cycling')
      expect(window.purity).toBeCloseTo(share, 10)
    }
    // The windows straddling the change from walking to cycling with under 80 % of either are dropped.
    expect(counts.impure).toBeGreaterThan(0)
    expect(counts.kept).toBe(flat.length)
    // With a threshold of 0.55, fewer are.
    expect(cut(wideRows(SESSION, SPANS), 0.55).counts.impure).toBeLessThan(counts.impure)
  })

  it('keeps windows of unlabelled samples with no label, and counts them', () => {
    const { flat, counts } = cut(wideRows(SESSION, []))
    expect(flat.every(window => window.label === null && window.purity === 1)).toBe(true)
    expect(counts.unlabelled).toBe(flat.length)
  })
})
