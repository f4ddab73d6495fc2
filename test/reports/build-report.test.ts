import { describe, expect, it } from 'vitest'
import { buildReport, intendedRates, type SessionFacts } from '../../src/reports/build-report.js'

const emptyFacts = (overrides: Partial<SessionFacts> = {}): SessionFacts => ({
  sessionId: 1,
  metadata: {},
  integrity: 'ok',
  sent: 0,
  written: 0,
  sensors: [],
  batches: { written: 0, highestBatchId: null, firstBatchId: 0, lostRanges: [], lostRangesTruncated: false, conflictingResends: 0 },
  clock: { batches: 0, quartilesMs: null, minMs: null, maxMs: null, slopeMsPerSecond: null, receivedSpanSeconds: null },
  timeline: { bucketSeconds: 1, start: null, counts: [] },
  ...overrides
})

describe('intended rates from metadata', () => {
  it('takes one rate for every sensor, or names the sensors recorded', () => {
    expect([...intendedRates({ sampleRateHz: 50 })]).toEqual([['Accelerometer', 50], ['Gyroscope', 50], ['Magnetometer', 50]])
    expect([...intendedRates({ sampleRateHz: { Gyroscope: 200, Accelerometer: 100 } })]).toEqual([['Accelerometer', 100], ['Gyroscope', 200]])
    // A sensor named without a usable rate is still expected; nothing usable means every sensor, no rate.
    expect([...intendedRates({ sampleRateHz: { Magnetometer: 'fast' } })]).toEqual([['Magnetometer', null]])
    for (const declared of [undefined, 0, -5, 'fast', Number.NaN, [], {}, { Barometer: 10 }]) {
      expect([...intendedRates({ sampleRateHz: declared })], String(declared)).toEqual([['Accelerometer', null], ['Gyroscope', null], ['Magnetometer', null]])
    }
  })
})

describe('buildReport', () => {
  it('calls a session without readings incomplete, every sensor missing, its clock unknown', () => {
    const report = buildReport(emptyFacts(), new Date('2026-11-24T12:00:00Z'))
    expect(report.summary).toEqual({
      complete: false,
      problems: ['missing_sensor'],
      warnings: ['clock_unknown'],
      lostBatches: 0,
      gaps: 0,
      duplicateTimestamps: 0,
      missingSensors: ['Accelerometer', 'Gyroscope', 'Magnetometer'],
      clockOffsetMs: null,
      conflictingResends: 0
    })
    expect(report.computedAt).toBe('2026-11-24T12:00:00.000Z')
    expect(report.timeline.readings).toEqual({ Accelerometer: [], Gyroscope: [], Magnetometer: [] })
  })

  it('counts lost batches from the session\'s first batch id, so a push session starting at message 5 has none lost before it', () => {
    const batches = (firstBatchId: number) => buildReport(emptyFacts({
      batches: { written: 4, highestBatchId: 9, firstBatchId, lostRanges: [[8, 8]], lostRangesTruncated: false, conflictingResends: 0 }
    }), new Date())
    expect(batches(5).batches).toMatchObject({ firstBatchId: 5, lost: 1 })
    expect(batches(5).summary.lostBatches).toBe(1)
    expect(batches(0).batches.lost).toBe(6)
  })

  it('gives no drift under 3 batches or a minute, and warns of an offset over 2 s either way', () => {
    const clock = (median: number, batches: number, receivedSpanSeconds = 60) => buildReport(emptyFacts({
      clock: { batches, quartilesMs: [median - 1, median, median + 1], minMs: median - 5, maxMs: median + 5, slopeMsPerSecond: 0.5, receivedSpanSeconds }
    }), new Date()).clock
    expect(clock(-100, 2)).toEqual({ batches: 2, offsetMs: { median: -100, p25: -101, p75: -99, min: -105, max: -95, spread: 2 }, receivedSpanSeconds: 60, driftPpm: null })
    expect(clock(-100, 3).driftPpm).toBe(500)
    // Batches received within a minute say nothing about drift.
    expect(clock(-100, 3, 59.9).driftPpm).toBeNull()
    const warnings = (median: number) => buildReport(emptyFacts({ clock: { batches: 3, quartilesMs: [median, median, median], minMs: median, maxMs: median, slopeMsPerSecond: 0, receivedSpanSeconds: 1 } }), new Date()).summary.warnings
    expect(warnings(-2000)).toEqual([])
    expect(warnings(-2001)).toEqual(['clock_offset'])
    expect(warnings(2001)).toEqual(['clock_offset'])
  })

  it('judges the rate against the intended one with a 10% tolerance', () => {
    const at = (readings: number, durationSeconds: number) => buildReport(emptyFacts({
      metadata: { sampleRateHz: { Accelerometer: 100 } },
      sensors: [{
        sensor: 'Accelerometer',
        readings,
        firstTimestamp: 'a',
        lastTimestamp: 'b',
        durationSeconds,
        duplicateTimestamps: 0,
        medianIntervalMs: 10,
        jitterMs: 0,
        gapCount: 0,
        longestGapMs: null,
        missingMs: 0
      }]
    }), new Date())
    expect(at(91, 1).sensors.Accelerometer.achievedToIntended).toBe(0.9)
    expect(at(91, 1).summary.problems).toEqual([])
    expect(at(90, 1).summary.problems).toEqual(['rate_below_intended'])
    // One reading has no rate: against an intended one, that is none at all.
    expect(at(1, 0).sensors.Accelerometer).toMatchObject({ achievedHz: null, achievedToIntended: 0 })
    expect(at(1, 0).summary.problems).toEqual(['rate_below_intended'])
  })
})

describe('edges of the session', () => {
  const sensor = (name: 'Accelerometer' | 'Gyroscope', first: string, last: string, readings: number, medianIntervalMs: number | null) => ({
    sensor: name,
    readings,
    firstTimestamp: first,
    lastTimestamp: last,
    durationSeconds: 0,
    duplicateTimestamps: 0,
    medianIntervalMs,
    jitterMs: null,
    gapCount: 0,
    longestGapMs: null,
    missingMs: 0
  })

  it('counts a single reading in a session the other sensor spans as a gap to each edge', () => {
    const report = buildReport(emptyFacts({
      metadata: { sampleRateHz: { Accelerometer: 100, Gyroscope: 100 } },
      sensors: [
        sensor('Accelerometer', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:01:40.000000Z', 10_001, 10),
        sensor('Gyroscope', '2026-01-01T00:00:30.000000Z', '2026-01-01T00:00:30.000000Z', 1, null)
      ]
    }), new Date())
    expect(report.sensors.Gyroscope.gaps).toEqual({ count: 2, longestMs: 70_000, missingMs: 100_000, leadingMs: 30_000, trailingMs: 70_000 })
    expect(report.sensors.Gyroscope.jitterMs).toBeNull()
    expect(report.summary.problems).toEqual(['gaps', 'rate_below_intended'])
  })

  it('lets a sensor start up to a second after the others without a gap, as phones do', () => {
    const at = (first: string) => buildReport(emptyFacts({
      sensors: [
        sensor('Accelerometer', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:10.000000Z', 1001, 10),
        sensor('Gyroscope', first, '2026-01-01T00:00:10.000000Z', 900, 10)
      ]
    }), new Date()).sensors.Gyroscope.gaps
    expect(at('2026-01-01T00:00:00.300000Z')).toEqual({ count: 0, longestMs: null, missingMs: 0, leadingMs: 300, trailingMs: 0 })
    expect(at('2026-01-01T00:00:01.000000Z').count).toBe(0)
    expect(at('2026-01-01T00:00:01.000001Z')).toEqual({ count: 1, longestMs: 1000.001, missingMs: 1000.001, leadingMs: 1000.001, trailingMs: 0 })
  })

  it('lets a sensor end within 3 median intervals of the others without a gap', () => {
    const report = buildReport(emptyFacts({
      sensors: [
        sensor('Accelerometer', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:10.000000Z', 1001, 10),
        sensor('Gyroscope', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:09.970000Z', 998, 10)
      ]
    }), new Date())
    expect(report.sensors.Gyroscope.gaps).toEqual({ count: 0, longestMs: null, missingMs: 0, leadingMs: 0, trailingMs: 30 })
  })
})
