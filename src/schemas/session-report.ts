import { z } from 'zod'
import { integrity } from './integrity.js'
import { SENSORS } from './sensors.js'

/** An interval this many times the sensor's median interval is a gap (the report's rule, and the plots' and exports'). */
export const GAP_FACTOR = 3

/** Bumped when the report's meaning changes; stored with every report. */
export const REPORT_VERSION = 4

/**
 * What makes a session incomplete: data the research expected and does not
 * have. A conflicting resend is one: the phone sent readings under a batch id
 * already written with others, and they were not stored.
 */
export const REPORT_PROBLEMS = ['integrity_mismatch', 'lost_batches', 'missing_sensor', 'gaps', 'rate_below_intended', 'conflicting_resends'] as const
export const reportProblem = z.enum(REPORT_PROBLEMS)
export type ReportProblem = z.infer<typeof reportProblem>

/** Worth knowing, not missing data. */
export const REPORT_WARNINGS = ['integrity_unreported', 'duplicate_timestamps', 'clock_offset', 'clock_unknown'] as const
export const reportWarning = z.enum(REPORT_WARNINGS)
export type ReportWarning = z.infer<typeof reportWarning>

const ms = z.number().describe('milliseconds')

export const sensorReport = z.object({
  expected: z.boolean().describe('the session was meant to record this sensor'),
  readings: z.number().int(),
  firstTimestamp: z.string().nullable().describe('ISO-8601 UTC with microseconds'),
  lastTimestamp: z.string().nullable(),
  durationSeconds: z.number().nullable().describe('last minus first timestamp'),
  achievedHz: z.number().nullable().describe('(distinct timestamps - 1) / duration'),
  intendedHz: z.number().nullable().describe('from the session metadata (sampleRateHz), when declared'),
  achievedToIntended: z.number().nullable().describe('achievedHz / intendedHz (0 when the sensor has under two distinct timestamps); null without an intended rate'),
  medianIntervalMs: ms.nullable().describe('median time between consecutive distinct timestamps'),
  jitterMs: ms.nullable().describe('standard deviation of the intervals that are neither duplicates nor gaps; null without any'),
  duplicateTimestamps: z.number().int().describe('readings whose timestamp repeats the previous reading of the same sensor'),
  gaps: z.object({
    count: z.number().int().describe('intervals longer than 3x the median interval, and a late start or early stop against the other sensors longer than that and than 1 s'),
    longestMs: ms.nullable(),
    missingMs: ms.describe('sum over the gaps of (gap - median interval), plus the late start and early stop: the time a steady stream would have filled'),
    leadingMs: ms.describe('how much later than the earliest reading of any sensor this sensor started'),
    trailingMs: ms.describe('how much earlier than the latest reading of any sensor this sensor stopped')
  })
})
export type SensorReport = z.infer<typeof sensorReport>

export const clockReport = z.object({
  batches: z.number().int().describe('batches with a recorded receive time'),
  offsetMs: z.object({
    median: ms,
    p25: ms,
    p75: ms,
    min: ms,
    max: ms,
    spread: ms.describe('p75 - p25')
  }).nullable().describe('per batch: its latest reading timestamp (device clock) minus the time the server received it; includes upload delay, so a true clock is slightly negative'),
  receivedSpanSeconds: z.number().nullable().describe('server time from the first batch received to the last'),
  driftPpm: z.number().nullable().describe('least-squares slope of the offset over server time, in microseconds per second; null under 3 batches or when they were received within 60 s')
})
export type ClockReport = z.infer<typeof clockReport>

export const batchesReport = z.object({
  written: z.number().int(),
  highestBatchId: z.number().int().nullable(),
  firstBatchId: z.number().int().optional().describe('where the batch ids start: 0 for a WebSocket phone, the first message id seen for a push client (absent in reports before version 4, where it was 0)'),
  lost: z.number().int().describe('batch ids missing between firstBatchId and the highest written (ids go up by one)'),
  lostRanges: z.array(z.tuple([z.number().int(), z.number().int()])).describe('[first, last] missing ids, inclusive; at most 100'),
  lostRangesTruncated: z.boolean(),
  conflictingResends: z.number().int().describe('batches resent with an already written batch_id but other readings: answered batch_conflict and not stored (the first content stays)')
})

export const timelineReport = z.object({
  bucketSeconds: z.number().int(),
  start: z.string().nullable().describe('start of the first bucket'),
  readings: z.record(z.enum(SENSORS), z.array(z.number().int())).describe('readings per bucket, per sensor')
})

export const reportSummary = z.object({
  complete: z.boolean().describe('no problem found'),
  problems: z.array(reportProblem),
  warnings: z.array(reportWarning),
  lostBatches: z.number().int(),
  gaps: z.number().int(),
  duplicateTimestamps: z.number().int(),
  missingSensors: z.array(z.enum(SENSORS)),
  clockOffsetMs: z.number().nullable().describe('median device minus server time'),
  // Optional: session lists serve stored summaries as they are, and those stored before version 3 lack it.
  conflictingResends: z.number().int().optional().describe('batches resent with other readings under an already written batch_id, not stored; absent in summaries computed before conflicts were counted')
}).describe('the completeness report in short; GET /sessions/:id/report has all of it')
export type ReportSummary = z.infer<typeof reportSummary>

export const sessionReport = z.object({
  version: z.number().int(),
  sessionId: z.number().int(),
  computedAt: z.string(),
  summary: reportSummary,
  integrity: z.object({
    verdict: integrity,
    sent: z.number().int().nullable(),
    written: z.number().int()
  }),
  batches: batchesReport,
  sensors: z.record(z.enum(SENSORS), sensorReport),
  clock: clockReport,
  timeline: timelineReport
})
export type SessionReport = z.infer<typeof sessionReport>
