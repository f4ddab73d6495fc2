import { parseIsoTimestampMicros } from '../schemas/timestamps.js'
import {
  REPORT_VERSION, type ClockReport, type ReportProblem, type ReportSummary, type ReportWarning,
  type SensorReport, type SessionReport
} from '../schemas/session-report.js'
import { SENSORS, type SensorName } from '../schemas/sensors.js'
import type { ClockFacts, SensorFacts, SessionFacts } from '../db/sessions/session-facts.js'
import { GAP_FACTOR } from '../schemas/session-report.js'

// The facts are what the database counted (src/db/sessions/session-facts.ts); the report is built from them here.
export type { BatchFacts, ClockFacts, SensorFacts, SessionFacts, TimelineFacts } from '../db/sessions/session-facts.js'
export { GAP_FACTOR }

/**
 * A sensor starting this much later, or stopping this much earlier, than the
 * others has a gap at that edge even when that is under 3 median intervals:
 * phones start their sensors tens to hundreds of milliseconds apart, which is
 * not missing data.
 */
export const EDGE_TOLERANCE_MS = 1000
/** A sensor delivering less than this share of its intended rate is a problem. */
export const RATE_TOLERANCE = 0.9
/** A median clock offset beyond this (either way) is worth a warning. */
export const CLOCK_OFFSET_WARNING_MS = 2000
/**
 * Drift is only estimated over batches received across at least this long:
 * over less, the upload delay's own variation (tens of ms) swamps what a
 * phone's clock drifts (tens of ppm: a few ms per minute).
 */
export const MIN_DRIFT_SPAN_SECONDS = 60

const isRate = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value) && value > 0

/**
 * The intended rate per sensor, from metadata `sampleRateHz`: a number for
 * every sensor, or an object naming the sensors the session records (those
 * it leaves out are not expected). Without it every sensor is expected and no
 * rate is checked.
 */
export function intendedRates (metadata: Record<string, unknown>): Map<SensorName, number | null> {
  const declared = metadata.sampleRateHz
  const rates = new Map<SensorName, number | null>()
  if (typeof declared === 'object' && declared !== null && !Array.isArray(declared)) {
    const perSensor = declared as Record<string, unknown>
    for (const sensor of SENSORS) {
      if (sensor in perSensor) rates.set(sensor, isRate(perSensor[sensor]) ? perSensor[sensor] : null)
    }
    if (rates.size > 0) return rates
  }
  for (const sensor of SENSORS) rates.set(sensor, isRate(declared) ? declared : null)
  return rates
}

const round = (value: number, digits = 3) => Number(value.toFixed(digits))
const roundOrNull = (value: number | null, digits = 3) => value === null ? null : round(value, digits)

/** The device time all sensors together cover: from the earliest first reading to the latest last one (µs). */
interface SessionSpan {
  firstMicros: number
  lastMicros: number
}

function sessionSpan (sensors: SensorFacts[]): SessionSpan | undefined {
  if (sensors.length === 0) return undefined
  const firsts = sensors.map(s => parseIsoTimestampMicros(s.firstTimestamp) ?? Infinity)
  const lasts = sensors.map(s => parseIsoTimestampMicros(s.lastTimestamp) ?? -Infinity)
  return { firstMicros: Math.min(...firsts), lastMicros: Math.max(...lasts) }
}

function sensorReport (facts: SensorFacts | undefined, expected: boolean, intendedHz: number | null, span: SessionSpan | undefined): SensorReport {
  if (!facts) {
    return {
      expected,
      readings: 0,
      firstTimestamp: null,
      lastTimestamp: null,
      durationSeconds: null,
      achievedHz: null,
      intendedHz,
      achievedToIntended: intendedHz === null ? null : 0,
      medianIntervalMs: null,
      jitterMs: null,
      duplicateTimestamps: 0,
      gaps: { count: 0, longestMs: null, missingMs: 0, leadingMs: 0, trailingMs: 0 }
    }
  }
  const distinct = facts.readings - facts.duplicateTimestamps
  const achievedHz = facts.durationSeconds > 0 ? (distinct - 1) / facts.durationSeconds : null

  // A sensor that starts late or stops early has a gap at that edge of the session: the other
  // sensors show the phone was recording.
  const firstMicros = parseIsoTimestampMicros(facts.firstTimestamp) ?? 0
  const lastMicros = parseIsoTimestampMicros(facts.lastTimestamp) ?? 0
  const leadingMs = span ? (firstMicros - span.firstMicros) / 1000 : 0
  const trailingMs = span ? (span.lastMicros - lastMicros) / 1000 : 0
  const threshold = Math.max(EDGE_TOLERANCE_MS, GAP_FACTOR * (facts.medianIntervalMs ?? 0))
  let count = facts.gapCount
  let longest = facts.longestGapMs
  let missing = facts.missingMs
  for (const edge of [leadingMs, trailingMs]) {
    if (edge <= threshold) continue
    count++
    longest = Math.max(longest ?? 0, edge)
    missing += edge
  }

  return {
    expected,
    readings: facts.readings,
    firstTimestamp: facts.firstTimestamp,
    lastTimestamp: facts.lastTimestamp,
    durationSeconds: round(facts.durationSeconds, 6),
    achievedHz: roundOrNull(achievedHz),
    intendedHz,
    // Under two distinct timestamps there is no rate: against an intended one, that is none.
    achievedToIntended: intendedHz === null ? null : round((achievedHz ?? 0) / intendedHz, 4),
    medianIntervalMs: roundOrNull(facts.medianIntervalMs),
    jitterMs: roundOrNull(facts.jitterMs),
    duplicateTimestamps: facts.duplicateTimestamps,
    gaps: { count, longestMs: roundOrNull(longest), missingMs: round(missing), leadingMs: round(leadingMs), trailingMs: round(trailingMs) }
  }
}

function clockReport (facts: ClockFacts): ClockReport {
  const [p25, median, p75] = facts.quartilesMs ?? []
  return {
    batches: facts.batches,
    offsetMs: median === undefined || p25 === undefined || p75 === undefined
      ? null
      : {
          median: round(median),
          p25: round(p25),
          p75: round(p75),
          min: round(facts.minMs ?? median),
          max: round(facts.maxMs ?? median),
          spread: round(p75 - p25)
        },
    receivedSpanSeconds: roundOrNull(facts.receivedSpanSeconds),
    // ms of offset per s of server time is 1000 µs per s: parts per million.
    driftPpm: facts.batches >= 3 && facts.slopeMsPerSecond !== null && (facts.receivedSpanSeconds ?? 0) >= MIN_DRIFT_SPAN_SECONDS
      ? round(facts.slopeMsPerSecond * 1000, 1)
      : null
  }
}

/** The report of an ended session: pure arithmetic and verdicts over what the database counted. */
/** Batch ids missing between the session's first batch id and its highest written one. */
export function lostBatches (highestBatchId: number | null, firstBatchId: number, written: number): number {
  return highestBatchId === null ? 0 : highestBatchId + 1 - firstBatchId - written
}

export function buildReport (facts: SessionFacts, computedAt: Date): SessionReport {
  const rates = intendedRates(facts.metadata)
  const bySensor = new Map(facts.sensors.map(s => [s.sensor, s]))
  const span = sessionSpan(facts.sensors)
  const sensors = Object.fromEntries(SENSORS.map(sensor =>
    [sensor, sensorReport(bySensor.get(sensor), rates.has(sensor), rates.get(sensor) ?? null, span)])) as Record<SensorName, SensorReport>

  const lost = lostBatches(facts.batches.highestBatchId, facts.batches.firstBatchId, facts.batches.written)
  const clock = clockReport(facts.clock)
  const missingSensors = SENSORS.filter(sensor => sensors[sensor].expected && sensors[sensor].readings === 0)
  const expected = SENSORS.filter(sensor => sensors[sensor].expected)
  const gaps = expected.reduce((sum, sensor) => sum + sensors[sensor].gaps.count, 0)
  const duplicateTimestamps = SENSORS.reduce((sum, sensor) => sum + sensors[sensor].duplicateTimestamps, 0)

  const problems: ReportProblem[] = []
  if (facts.integrity === 'mismatch') problems.push('integrity_mismatch')
  if (lost > 0) problems.push('lost_batches')
  if (missingSensors.length > 0) problems.push('missing_sensor')
  if (gaps > 0) problems.push('gaps')
  if (expected.some(sensor => {
    const ratio = sensors[sensor].achievedToIntended
    return ratio !== null && ratio < RATE_TOLERANCE
  })) problems.push('rate_below_intended')
  if (facts.batches.conflictingResends > 0) problems.push('conflicting_resends')

  const warnings: ReportWarning[] = []
  if (facts.integrity === 'unreported') warnings.push('integrity_unreported')
  if (duplicateTimestamps > 0) warnings.push('duplicate_timestamps')
  if (clock.offsetMs === null) warnings.push('clock_unknown')
  else if (Math.abs(clock.offsetMs.median) > CLOCK_OFFSET_WARNING_MS) warnings.push('clock_offset')

  const summary: ReportSummary = {
    complete: problems.length === 0,
    problems,
    warnings,
    lostBatches: lost,
    gaps,
    duplicateTimestamps,
    missingSensors,
    clockOffsetMs: clock.offsetMs?.median ?? null,
    conflictingResends: facts.batches.conflictingResends
  }

  const bucketCount = facts.timeline.counts.reduce((max, c) => Math.max(max, c.bucket + 1), 0)
  const timelineReadings = Object.fromEntries(SENSORS.map(sensor => [sensor, new Array<number>(bucketCount).fill(0)])) as Record<SensorName, number[]>
  for (const { bucket, sensor, readings } of facts.timeline.counts) timelineReadings[sensor][bucket] = readings

  return {
    version: REPORT_VERSION,
    sessionId: facts.sessionId,
    computedAt: computedAt.toISOString(),
    summary,
    integrity: { verdict: facts.integrity, sent: facts.sent, written: facts.written },
    batches: {
      written: facts.batches.written,
      highestBatchId: facts.batches.highestBatchId,
      firstBatchId: facts.batches.firstBatchId,
      lost,
      lostRanges: facts.batches.lostRanges,
      lostRangesTruncated: facts.batches.lostRangesTruncated,
      conflictingResends: facts.batches.conflictingResends
    },
    sensors,
    clock,
    timeline: { bucketSeconds: facts.timeline.bucketSeconds, start: facts.timeline.start, readings: timelineReadings }
  }
}
