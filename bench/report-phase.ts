/**
 * The "report" phase: the completeness report of one long ended session,
 * `ensureSessionReport(..., { recompute: true })`, against the time the
 * database takes to read that session's rows once, measured in the same run.
 *
 * The session is built server-side (readings and ledger from
 * generate_series, no data crosses the wire) with known defects: a few pauses
 * of the device inside batches and one lost batch. The report must find
 * exactly those, the way the service phases must store exactly what they acked.
 */
import { isDeepStrictEqual } from 'node:util'
import type { Pool } from '../src/db/pool.js'
import { ensureSessionReport } from '../src/reports/report-store.js'
import { GAP_FACTOR, RATE_TOLERANCE } from '../src/reports/build-report.js'
import type { ReportProblem, SessionReport } from '../src/schemas/session-report.js'
import { SENSORS } from '../src/schemas/sensors.js'
import { READINGS_PER_BATCH, SAMPLE_INTERVAL_MS, SAMPLES_PER_BATCH } from './readings.js'

/** Below this the built-in defects do not fit in distinct batches. */
export const MIN_REPORT_READINGS = 3000
/** Intended rate declared in the session's metadata (sampleRateHz), as the phones record. */
const SAMPLE_RATE_HZ = 1000 / SAMPLE_INTERVAL_MS
/** Device pauses (extra milliseconds between two samples), placed inside batches at these fractions of the session. */
const PAUSES: Array<{ at: number, extraMs: number }> = [
  { at: 0.2, extraMs: 200 },
  { at: 0.45, extraMs: 500 },
  { at: 0.7, extraMs: 2000 }
]
/** The one batch id missing from the ledger (and its readings from the table), as a fraction of the session. */
const LOST_AT = 0.85
/** A pause falls on this sample of its batch: mid-batch, so it never touches the lost batch's hole. */
const PAUSE_SAMPLE_IN_BATCH = 60

export interface ReportSessionPlan {
  /** Batch ids 0 .. batches - 1 were sent; all but `lostBatch` are stored. */
  batches: number
  lostBatch: number
  /** Readings stored: (batches - 1) x 375. */
  readings: number
  readingsPerSensor: number
  /** Sample index (per sensor) before which the device paused, and for how long beyond one interval. */
  pauses: Array<{ sample: number, extraMs: number }>
  startMs: number
}

/** A session with at least `readings` stored readings (whole batches), one more batch lost, and the pauses. */
export function planReportSession (readings: number, startMs: number): ReportSessionPlan {
  const stored = Math.ceil(Math.max(MIN_REPORT_READINGS, readings) / READINGS_PER_BATCH)
  const batches = stored + 1
  const batchAt = (fraction: number) => Math.round(fraction * (batches - 1))
  const lostBatch = batchAt(LOST_AT)
  const pauses = PAUSES.map(({ at, extraMs }) => ({ sample: batchAt(at) * SAMPLES_PER_BATCH + PAUSE_SAMPLE_IN_BATCH, extraMs }))
  const used = new Set([lostBatch, ...pauses.map(pause => Math.floor(pause.sample / SAMPLES_PER_BATCH))])
  if (used.size !== pauses.length + 1) throw new Error(`report session of ${readings} readings is too small for its built-in defects`)
  return { batches, lostBatch, readings: stored * READINGS_PER_BATCH, readingsPerSensor: stored * SAMPLES_PER_BATCH, pauses, startMs: Math.round(startMs) }
}

/** Device time of sample i, in epoch milliseconds: steady 100 Hz plus the pauses before it. */
export function sampleMs (plan: ReportSessionPlan, sample: number): number {
  let ms = plan.startMs + sample * SAMPLE_INTERVAL_MS
  for (const pause of plan.pauses) if (pause.sample <= sample) ms += pause.extraMs
  return ms
}

/** Device span of the session's samples, in milliseconds. */
export const sessionSpanMs = (plan: ReportSessionPlan) => sampleMs(plan, plan.batches * SAMPLES_PER_BATCH - 1) - plan.startMs

// The device time (epoch ms) of sample `i` in SQL: start + i x 10 ms + the pauses (parallel int arrays) at or before it.
const sampleMsSql = (i: string, start: string, pauseSamples: string, pauseExtras: string) =>
  `(${start}::bigint + ${i} * ${SAMPLE_INTERVAL_MS} +
    coalesce((select sum(p.extra) from unnest(${pauseSamples}::int[], ${pauseExtras}::int[]) p(sample, extra) where p.sample <= ${i}), 0))`
const timestampSql = (msSql: string) => `(timestamptz 'epoch' + (${msSql} * 1000) * interval '1 microsecond')`

/**
 * Readings in the order the service writes them: batch after batch, each
 * sample's three sensors together. One generate_series over the reading
 * index (no join) keeps that physical order, which is what the report's
 * index scan then reads.
 */
const INSERT_READINGS_SQL = `
insert into readings (session_id, ts, sensor, x, y, z)
select $1, ${timestampSql(sampleMsSql('r.i', '$2', '$3', '$4'))}, r.sensor,
  r.base + sin(r.i * 0.01256 + r.sensor), 9.81 * r.sensor + sin(r.i * 0.0503 + 1), 0.3 + cos(r.i * 0.01256 + r.sensor)
from (select n / ${SENSORS.length} as i, (n % ${SENSORS.length})::smallint as sensor, (n % ${SENSORS.length}) * 20.0::float8 as base
      from generate_series(0::bigint, $5::bigint - 1) n) r
where r.i / ${SAMPLES_PER_BATCH} <> $6`

/** The ledger as the ingest path writes it: device span of each batch, received a little after its last sample. */
const INSERT_LEDGER_SQL = `
insert into session_batches (session_id, batch_id, reading_count, written_at, received_at, first_reading_at, last_reading_at)
select $1, b.id, ${READINGS_PER_BATCH}, b.received, b.received, ${timestampSql(sampleMsSql(`b.id * ${SAMPLES_PER_BATCH}`, '$2', '$3', '$4'))}, b.last
from (select id, last, last + (150 + (id % 5) * 20) * interval '1 millisecond' as received
      from (select id, ${timestampSql(sampleMsSql(`(id * ${SAMPLES_PER_BATCH} + ${SAMPLES_PER_BATCH - 1})`, '$2', '$3', '$4'))} as last
            from generate_series(0, $5::int - 1) id) l) b
where b.id <> $6`

/** Inserts the ended session, its ledger and its readings; returns the session id. */
export async function createReportSession (pool: Pool, userId: number, plan: ReportSessionPlan): Promise<number> {
  const endMs = plan.startMs + sessionSpanMs(plan) + 1000
  const { rows: [row] } = await pool.query<{ id: string }>(
    `insert into sessions (user_id, created_at, expires_at, destroyed_at, destroy_reason, integrity,
       total_sensor_readings_written, total_sensor_readings_sent, metadata)
     values ($1, to_timestamp($2 / 1000.0), to_timestamp($3 / 1000.0), to_timestamp($3 / 1000.0), 'client', 'mismatch', $4, $5, $6) returning id`,
    [userId, plan.startMs - 1000, endMs, plan.readings, plan.readings + READINGS_PER_BATCH,
      JSON.stringify({ bench: 'report', sampleRateHz: SAMPLE_RATE_HZ })])
  const sessionId = Number(row?.id)
  const pauseSamples = plan.pauses.map(pause => pause.sample)
  const pauseExtras = plan.pauses.map(pause => pause.extraMs)
  await pool.query(INSERT_LEDGER_SQL, [sessionId, plan.startMs, pauseSamples, pauseExtras, plan.batches, plan.lostBatch])
  await pool.query(INSERT_READINGS_SQL, [sessionId, plan.startMs, pauseSamples, pauseExtras,
    plan.batches * READINGS_PER_BATCH, plan.lostBatch])
  // As autovacuum would after a million inserts; hint bits are left to the first read, as after a real session.
  await pool.query('analyze readings')
  await pool.query('analyze session_batches')
  return sessionId
}

/** What the report must say of the planned session: each difference is one line. */
export function checkReport (report: SessionReport, plan: ReportSessionPlan): string[] {
  const problems: string[] = []
  const expect = (what: string, actual: unknown, expected: unknown) => {
    if (!isDeepStrictEqual(actual, expected)) problems.push(`${what}: ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`)
  }
  const near = (what: string, actual: number | null, expected: number, tolerance = 0.01) => {
    if (actual === null || Math.abs(actual - expected) > tolerance) problems.push(`${what}: ${actual}, expected ${expected}`)
  }
  const intervalMs = SAMPLE_INTERVAL_MS
  // The lost batch leaves one hole of its 125 samples in every sensor's stream, besides the pauses.
  const holes = [...plan.pauses.map(pause => intervalMs + pause.extraMs), (SAMPLES_PER_BATCH + 1) * intervalMs]
  if (holes.some(hole => hole <= GAP_FACTOR * intervalMs)) throw new Error('a built-in defect is too short to be a gap')
  const spanSeconds = sessionSpanMs(plan) / 1000
  const achievedHz = (plan.readingsPerSensor - 1) / spanSeconds
  const expectedProblems: ReportProblem[] = ['integrity_mismatch', 'lost_batches', 'gaps']
  if (achievedHz / SAMPLE_RATE_HZ < RATE_TOLERANCE) expectedProblems.push('rate_below_intended')

  expect('summary.problems', report.summary.problems, expectedProblems)
  expect('summary.warnings', report.summary.warnings, [])
  expect('summary.lostBatches', report.summary.lostBatches, 1)
  expect('summary.gaps', report.summary.gaps, holes.length * SENSORS.length)
  expect('summary.duplicateTimestamps', report.summary.duplicateTimestamps, 0)
  expect('summary.missingSensors', report.summary.missingSensors, [])
  expect('integrity', report.integrity, { verdict: 'mismatch', sent: plan.readings + READINGS_PER_BATCH, written: plan.readings })
  expect('batches', report.batches, {
    written: plan.batches - 1,
    highestBatchId: plan.batches - 1,
    firstBatchId: 0,
    lost: 1,
    lostRanges: [[plan.lostBatch, plan.lostBatch]],
    lostRangesTruncated: false,
    conflictingResends: 0
  })
  expect('clock.batches', report.clock.batches, plan.batches - 1)
  // Received 150..230 ms after the batch's last sample: the offset is that delay, negative.
  const median = report.clock.offsetMs?.median ?? null
  if (median === null || median > -150 || median < -230) problems.push(`clock.offsetMs.median: ${median}, expected within [-230, -150]`)
  for (const sensor of SENSORS) {
    const s = report.sensors[sensor]
    expect(`${sensor}.readings`, s.readings, plan.readingsPerSensor)
    expect(`${sensor}.firstTimestamp`, s.firstTimestamp, new Date(plan.startMs).toISOString().replace('Z', '000Z'))
    near(`${sensor}.durationSeconds`, s.durationSeconds, spanSeconds, 1e-6)
    near(`${sensor}.achievedHz`, s.achievedHz, achievedHz, 0.001)
    near(`${sensor}.medianIntervalMs`, s.medianIntervalMs, intervalMs, 0.001)
    near(`${sensor}.jitterMs`, s.jitterMs, 0, 0.001)
    expect(`${sensor}.duplicateTimestamps`, s.duplicateTimestamps, 0)
    expect(`${sensor}.gaps.count`, s.gaps.count, holes.length)
    near(`${sensor}.gaps.longestMs`, s.gaps.longestMs, Math.max(...holes))
    near(`${sensor}.gaps.missingMs`, s.gaps.missingMs, holes.reduce((sum, hole) => sum + hole - intervalMs, 0))
    expect(`${sensor} readings in the timeline`, report.timeline.readings[sensor].reduce((sum, n) => sum + n, 0), plan.readingsPerSensor)
  }
  return problems
}

export interface Timing {
  seconds: number
  readingsPerSecond: number
}

export interface ReportSizeResult {
  /** Readings stored in the session. */
  readings: number
  sessionId: number
  /** Device time the session covers. */
  sessionMinutes: number
  /** Building the session (readings, ledger, analyze); not part of any figure. */
  setupSeconds: number
  /** ensureSessionReport(..., { recompute: true }), best run: lock, 5 statements, build, store. */
  report: Timing
  /** The database reading the session's rows once (BASELINE_SQL), best run. */
  baseline: Timing
  /** report seconds over baseline seconds: how many "reads of the session" a report costs. */
  ratio: number
  runs: { report: number[], baseline: number[] }
  /** The report found exactly the built-in defects, on every run. */
  verified: boolean
  problems: string[]
  summary?: SessionReport['summary']
}

export interface ReportPhaseResult {
  status: 'measured' | 'failed'
  message: string
  repeats: number
  /** The service's SESSION_REPORT_TIMEOUT_MS: a report slower than this fails in the service. */
  serviceTimeoutMs: number
  sizes: ReportSizeResult[]
}

/**
 * The baseline: one pass over the session's rows in the database, the same
 * rows (index on session_id, ts) and the same columns (ts, sensor) the
 * report reads, with no sort, no window and nothing sent to the client.
 * sum(sensor) makes it fetch the heap rows as the report must (count and
 * min/max of ts alone could be answered from the index after a vacuum).
 * Chosen over COPY TO of the raw columns because that would add formatting
 * and transfer of x, y, z, which the report never touches, and so flatter
 * the ratio. It runs without parallel workers, as the report's statements
 * do (their window and ordered-set aggregates are not parallel): a parallel
 * scan would make the ratio depend on the core count instead of on the work.
 */
export const BASELINE_SQL = 'select count(*)::int as readings, min(ts), max(ts), sum(sensor) from readings where session_id = $1'

async function readSessionOnce (pool: Pool, sessionId: number): Promise<{ seconds: number, readings: number | undefined }> {
  const client = await pool.connect()
  try {
    await client.query('begin read only')
    await client.query('set local max_parallel_workers_per_gather = 0')
    const started = performance.now()
    const { rows: [read] } = await client.query<{ readings: number }>(BASELINE_SQL, [sessionId])
    const seconds = (performance.now() - started) / 1000
    await client.query('commit')
    return { seconds, readings: read?.readings }
  } finally {
    client.release()
  }
}

const timing = (seconds: number, readings: number): Timing => ({ seconds, readingsPerSecond: readings / seconds })

export interface ReportPhaseOptions {
  pool: Pool
  userId: number
  /** Requested sizes, in readings; each becomes one session, measured on its own. */
  sizes: number[]
  /** Report and baseline each run this many times, alternating; the best run counts. */
  repeats: number
  timescaledb: boolean
  serviceTimeoutMs: number
  /** Empties readings before each size, as every phase starts from an empty table. */
  truncate: () => Promise<void>
  say: (line: string) => void
}

export async function measureReportSize (options: ReportPhaseOptions, requested: number): Promise<ReportSizeResult> {
  const { pool } = options
  const plan = planReportSession(requested, Date.now() - 2 * 3600_000)
  // Well above the service's bound: the phase measures the time, the target compares it with that bound.
  const timeoutMs = Math.max(600_000, options.serviceTimeoutMs * 10)
  await options.truncate()
  const setupStarted = performance.now()
  const sessionId = await createReportSession(pool, options.userId, plan)
  const setupSeconds = (performance.now() - setupStarted) / 1000
  const runs = { report: [] as number[], baseline: [] as number[] }
  const problems: string[] = []
  let summary: SessionReport['summary'] | undefined
  for (let run = 0; run < Math.max(1, options.repeats); run++) {
    const read = await readSessionOnce(pool, sessionId)
    runs.baseline.push(read.seconds)
    if (read.readings !== plan.readings) problems.push(`baseline read ${read.readings} readings, expected ${plan.readings}`)

    const started = performance.now()
    const result = await ensureSessionReport(pool, sessionId, { timescaledb: options.timescaledb, timeoutMs, recompute: true })
    runs.report.push((performance.now() - started) / 1000)
    if (result.status !== 'ready') {
      problems.push(`ensureSessionReport answered ${result.status}`)
      continue
    }
    summary = result.report.summary
    for (const problem of checkReport(result.report, plan)) if (!problems.includes(problem)) problems.push(problem)
  }
  const report = timing(Math.min(...runs.report), plan.readings)
  const baseline = timing(Math.min(...runs.baseline), plan.readings)
  return {
    readings: plan.readings,
    sessionId,
    sessionMinutes: sessionSpanMs(plan) / 60_000,
    setupSeconds,
    report,
    baseline,
    ratio: report.seconds / baseline.seconds,
    runs,
    verified: problems.length === 0,
    problems,
    summary
  }
}

/** Every requested size in turn; a failure (timeout, SQL error) ends the phase with what was measured so far. */
export async function runReportPhase (options: ReportPhaseOptions): Promise<ReportPhaseResult> {
  const result: ReportPhaseResult = { status: 'measured', message: 'ok', repeats: options.repeats, serviceTimeoutMs: options.serviceTimeoutMs, sizes: [] }
  for (const requested of options.sizes) {
    options.say(`report: a session of ${Math.max(MIN_REPORT_READINGS, requested).toLocaleString('en')} readings (3 sensors at ${SAMPLE_RATE_HZ} Hz, 3 pauses, 1 lost batch): ` +
      `ensureSessionReport against reading its rows once, best of ${options.repeats}...`)
    try {
      const size = await measureReportSize(options, requested)
      result.sizes.push(size)
      options.say(`  ${size.readings.toLocaleString('en')} readings (${size.sessionMinutes.toFixed(1)} min, built in ${size.setupSeconds.toFixed(1)} s): ` +
        `report ${size.report.seconds.toFixed(3)} s, read ${size.baseline.seconds.toFixed(3)} s, ratio ${size.ratio.toFixed(1)}x, found the built-in defects: ${size.verified}`)
    } catch (err) {
      result.status = 'failed'
      result.message = `${requested} readings: ${(err as Error).message}`
      options.say(`  failed: ${result.message}`)
      break
    }
  }
  return result
}
