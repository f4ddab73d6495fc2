import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { buildReport, type SessionFacts } from '../../src/reports/build-report.js'
import { reportSummary } from '../../src/schemas/session-report.js'

const facts = (conflictingResends: number): SessionFacts => ({
  sessionId: 1,
  metadata: { sampleRateHz: { Accelerometer: 100 } },
  integrity: 'ok',
  sent: 2,
  written: 2,
  sensors: [{
    sensor: 'Accelerometer',
    readings: 2,
    firstTimestamp: '2026-11-24T12:00:00.000000Z',
    lastTimestamp: '2026-11-24T12:00:00.010000Z',
    durationSeconds: 0.01,
    duplicateTimestamps: 0,
    medianIntervalMs: 10,
    jitterMs: 0,
    gapCount: 0,
    longestGapMs: null,
    missingMs: 0
  }],
  batches: { written: 1, highestBatchId: 0, firstBatchId: 0, lostRanges: [], lostRangesTruncated: false, conflictingResends },
  clock: { batches: 1, quartilesMs: [-40, -40, -40], minMs: -40, maxMs: -40, slopeMsPerSecond: null, receivedSpanSeconds: 0 },
  timeline: { bucketSeconds: 1, start: '2026-11-24T12:00:00.000000Z', counts: [{ bucket: 0, sensor: 'Accelerometer', readings: 2 }] }
})

describe('conflicting resends in the report', () => {
  it('makes a session incomplete and counts them in the summary and the batches', () => {
    const clean = buildReport(facts(0), new Date())
    expect(clean.summary).toMatchObject({ complete: true, problems: [], conflictingResends: 0 })
    const report = buildReport(facts(2), new Date())
    expect(report.summary).toMatchObject({ complete: false, problems: ['conflicting_resends'], conflictingResends: 2 })
    expect(report.batches.conflictingResends).toBe(2)
  })

  it('accepts a summary stored before conflicts were counted, as session lists serve it', () => {
    const stored = { complete: true, problems: [], warnings: [], lostBatches: 0, gaps: 0, duplicateTimestamps: 0, missingSensors: [], clockOffsetMs: -40 }
    expect(z.safeEncode(reportSummary, stored)).toEqual({ success: true, data: stored })
  })
})
