import type { BatchFacts, ClockFacts, SensorFacts, SessionFacts, TimelineFacts } from '../reports/build-report.js'
import { GAP_FACTOR } from '../reports/build-report.js'
import { parseIsoTimestampMicros } from '../ingest/timestamps.js'
import type { Integrity } from '../schemas/integrity.js'
import { SENSORS, type SensorName } from '../schemas/sensors.js'
import type { Queryable } from './queryable.js'
import { isoTimestampSql } from './readings-sql.js'

/** The timeline has at most this many buckets, whatever the session's length. */
export const MAX_TIMELINE_BUCKETS = 60
/** At most this many ranges of lost batch ids are listed. */
export const MAX_LOST_RANGES = 100

export interface EndedSessionRow {
  id: number
  metadata: Record<string, unknown>
  integrity: Integrity
  total_sensor_readings_sent: number | null
  total_sensor_readings_written: number
}

/**
 * Per sensor, in one pass over the session's rows sorted by (sensor, ts):
 * the interval to the previous reading, then the median of the non-zero
 * intervals, then (joining the median back) jitter and gaps. date_part
 * rather than extract: it stays in float8 where extract would compute in
 * numeric, several times slower over a million rows.
 */
const SENSOR_FACTS_SQL = `
with r as (
  select sensor, ts, date_part('epoch', ts - lag(ts) over (partition by sensor order by ts)) * 1000 as dt_ms
  from readings
  where session_id = $1 and ts >= $2 and ts <= $3
), per_sensor as (
  select sensor, count(*)::int as readings, min(ts) as first_ts, max(ts) as last_ts,
    (count(*) filter (where dt_ms = 0))::int as duplicates,
    percentile_cont(0.5) within group (order by dt_ms) filter (where dt_ms > 0) as median_ms
  from r group by sensor
)
select p.sensor, p.readings, p.duplicates, p.median_ms,
  ${isoTimestampSql('p.first_ts')} as first_ts, ${isoTimestampSql('p.last_ts')} as last_ts,
  date_part('epoch', p.last_ts - p.first_ts) as duration_s,
  stddev_pop(r.dt_ms) filter (where r.dt_ms > 0 and r.dt_ms <= ${GAP_FACTOR} * p.median_ms) as jitter_ms,
  (count(*) filter (where r.dt_ms > ${GAP_FACTOR} * p.median_ms))::int as gaps,
  max(r.dt_ms) filter (where r.dt_ms > ${GAP_FACTOR} * p.median_ms) as longest_gap_ms,
  coalesce(sum(r.dt_ms - p.median_ms) filter (where r.dt_ms > ${GAP_FACTOR} * p.median_ms), 0) as missing_ms
from per_sensor p join r on r.sensor = p.sensor
group by p.sensor, p.readings, p.duplicates, p.median_ms, p.first_ts, p.last_ts
order by p.sensor`

/** Holes in the batch id sequence (which starts at 0), as inclusive ranges, in order. */
const LOST_RANGES_SQL = `
select prev + 1 as first_lost, batch_id - 1 as last_lost
from (select batch_id, coalesce(lag(batch_id) over (order by batch_id), -1) as prev
      from session_batches where session_id = $1) b
where batch_id > prev + 1
order by batch_id
limit $2`

/** Device time (latest reading of the batch) minus server receive time, per batch. */
const CLOCK_FACTS_SQL = `
with o as (
  select date_part('epoch', last_reading_at - received_at) * 1000 as offset_ms, date_part('epoch', received_at) as t
  from session_batches
  where session_id = $1 and received_at is not null and last_reading_at is not null
)
select count(*)::int as batches,
  percentile_cont(array[0.25, 0.5, 0.75]) within group (order by offset_ms) as quartiles,
  min(offset_ms) as min_ms, max(offset_ms) as max_ms,
  regr_slope(offset_ms, t) as slope,
  max(t) - min(t) as span_s
from o`

const timelineSql = (bucketFunction: 'time_bucket' | 'date_bin') => `
select floor(date_part('epoch', ${bucketFunction}($4::interval, ts, $2::timestamptz) - $2::timestamptz) / $5)::int as bucket,
  sensor, count(*)::int as readings
from readings
where session_id = $1 and ts >= $2 and ts <= $3
group by 1, sensor
order by 1, sensor`

interface SensorFactsRow {
  sensor: number
  readings: number
  duplicates: number
  median_ms: number | null
  first_ts: string
  last_ts: string
  duration_s: number
  jitter_ms: number | null
  gaps: number
  longest_gap_ms: number | null
  missing_ms: number
}

export interface FactsOptions {
  /** TimescaleDB's time_bucket where the extension is present, PostgreSQL's date_bin otherwise. */
  timescaledb: boolean
}

const PG_INFINITY = ['-infinity', 'infinity'] as const

/**
 * Gathers what the report is made of, for an ended session, in four
 * statements over its own rows: the readings are read between the earliest
 * and latest device times the ledger recorded (exact bounds, which let
 * TimescaleDB skip every chunk outside them), the ledger itself for holes
 * and clock offsets.
 */
export async function gatherSessionFacts (db: Queryable, session: EndedSessionRow, options: FactsOptions): Promise<SessionFacts> {
  const { rows: [ledger] } = await db.query<{ written: number, highest: number | null, first: string | null, last: string | null, unknown_span: boolean | null }>(
    `select count(*)::int as written, max(batch_id) as highest,
       ${isoTimestampSql('min(first_reading_at)')} as first, ${isoTimestampSql('max(last_reading_at)')} as last,
       bool_or(first_reading_at is null) as unknown_span
     from session_batches where session_id = $1`, [session.id])
  // Batches written before the ledger kept device times leave the span open.
  const [lower, upper] = ledger?.unknown_span !== false || !ledger.first || !ledger.last
    ? PG_INFINITY
    : [ledger.first, ledger.last]

  const [sensorRows, lostRows, clockRow] = [
    (await db.query<SensorFactsRow>(SENSOR_FACTS_SQL, [session.id, lower, upper])).rows,
    (await db.query<{ first_lost: number, last_lost: number }>(LOST_RANGES_SQL, [session.id, MAX_LOST_RANGES + 1])).rows,
    (await db.query<{ batches: number, quartiles: number[] | null, min_ms: number | null, max_ms: number | null, slope: number | null, span_s: number | null }>(CLOCK_FACTS_SQL, [session.id])).rows[0]
  ]

  // A code outside the list cannot be written by the service; it is left out rather than misnamed.
  const sensors: SensorFacts[] = sensorRows.filter(row => SENSORS[row.sensor] !== undefined).map(row => ({
    sensor: SENSORS[row.sensor] as SensorName,
    readings: row.readings,
    firstTimestamp: row.first_ts,
    lastTimestamp: row.last_ts,
    durationSeconds: row.duration_s,
    duplicateTimestamps: row.duplicates,
    medianIntervalMs: row.median_ms,
    jitterMs: row.jitter_ms,
    gapCount: row.gaps,
    longestGapMs: row.longest_gap_ms,
    missingMs: row.missing_ms
  }))

  const batches: BatchFacts = {
    written: ledger?.written ?? 0,
    highestBatchId: ledger?.highest ?? null,
    lostRanges: lostRows.slice(0, MAX_LOST_RANGES).map(row => [row.first_lost, row.last_lost]),
    lostRangesTruncated: lostRows.length > MAX_LOST_RANGES
  }

  const quartiles = clockRow?.quartiles
  const clock: ClockFacts = {
    batches: clockRow?.batches ?? 0,
    quartilesMs: quartiles && quartiles.length === 3 ? [quartiles[0] as number, quartiles[1] as number, quartiles[2] as number] : null,
    minMs: clockRow?.min_ms ?? null,
    maxMs: clockRow?.max_ms ?? null,
    slopeMsPerSecond: clockRow?.slope ?? null,
    receivedSpanSeconds: clockRow?.span_s ?? null
  }

  return {
    sessionId: session.id,
    metadata: session.metadata,
    integrity: session.integrity,
    sent: session.total_sensor_readings_sent,
    written: session.total_sensor_readings_written,
    sensors,
    batches,
    clock,
    timeline: await gatherTimeline(db, session.id, sensors, options)
  }
}

/** Readings per sensor in at most MAX_TIMELINE_BUCKETS equal buckets from the first reading on. */
async function gatherTimeline (db: Queryable, sessionId: number, sensors: SensorFacts[], options: FactsOptions): Promise<TimelineFacts> {
  if (sensors.length === 0) return { bucketSeconds: 1, start: null, counts: [] }
  // ISO text of one fixed format: the smallest string is the earliest time.
  const first = sensors.map(s => s.firstTimestamp).reduce((a, b) => a < b ? a : b)
  const last = sensors.map(s => s.lastTimestamp).reduce((a, b) => a > b ? a : b)
  const spanSeconds = ((parseIsoTimestampMicros(last) ?? 0) - (parseIsoTimestampMicros(first) ?? 0)) / 1e6
  const bucketSeconds = Math.floor(spanSeconds / MAX_TIMELINE_BUCKETS) + 1
  const { rows } = await db.query<{ bucket: number, sensor: number, readings: number }>(timelineSql(options.timescaledb ? 'time_bucket' : 'date_bin'),
    [sessionId, first, last, `${bucketSeconds} seconds`, bucketSeconds])
  const counts = rows.filter(row => SENSORS[row.sensor] !== undefined)
    .map(row => ({ bucket: row.bucket, sensor: SENSORS[row.sensor] as SensorName, readings: row.readings }))
  return { bucketSeconds, start: first, counts }
}
