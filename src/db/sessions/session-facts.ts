import { parseIsoTimestampMicros } from '../../schemas/timestamps.js'
import type { Integrity } from '../../schemas/integrity.js'
import { GAP_FACTOR } from '../../schemas/session-report.js'
import { SENSORS, type SensorName } from '../../schemas/sensors.js'
import type { Queryable } from '../queryable.js'
import { isoTimestampSql } from '../readings/readings-sql.js'

/** One sensor's figures as the database computed them; only sensors with readings have one. */
export interface SensorFacts {
  sensor: SensorName
  readings: number
  firstTimestamp: string
  lastTimestamp: string
  durationSeconds: number
  duplicateTimestamps: number
  medianIntervalMs: number | null
  jitterMs: number | null
  gapCount: number
  longestGapMs: number | null
  missingMs: number
}

export interface ClockFacts {
  batches: number
  /** p25, median, p75 of (latest reading timestamp - receive time) per batch; null without batches. */
  quartilesMs: [number, number, number] | null
  minMs: number | null
  maxMs: number | null
  /** Least-squares slope of the offset (ms) over server time (s); null when undefined. */
  slopeMsPerSecond: number | null
  /** Server time from the first batch received to the last. */
  receivedSpanSeconds: number | null
}

export interface BatchFacts {
  written: number
  highestBatchId: number | null
  /** The session's first batch id: 0 for a WebSocket phone, a push client's first message id. */
  firstBatchId: number
  lostRanges: Array<[number, number]>
  lostRangesTruncated: boolean
  /** Resends refused because their readings differed from the batch id's written ones. */
  conflictingResends: number
}

export interface TimelineFacts {
  bucketSeconds: number
  start: string | null
  /** Readings per (bucket index, sensor); absent pairs had none. */
  counts: Array<{ bucket: number, sensor: SensorName, readings: number }>
}

/** Everything the report is made of, gathered from one session's rows and ledger. */
export interface SessionFacts {
  sessionId: number
  metadata: Record<string, unknown>
  integrity: Integrity
  sent: number | null
  written: number
  sensors: SensorFacts[]
  batches: BatchFacts
  clock: ClockFacts
  timeline: TimelineFacts
}

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
 * The timestamp of the previous reading of the same sensor, in a window over
 * the session's rows in time order: a running maximum per sensor over the
 * rows before this one. It gives what lag() partitioned by sensor would, but
 * in the order the (session_id, ts) index already returns, so PostgreSQL
 * reads the rows in index order instead of sorting them by (sensor, ts)
 * (the report phase of `npm run bench` measured the gain).
 */
const PREVIOUS_OF_SAME_SENSOR_SQL = `case sensor ${SENSORS.map((_, code) =>
  `when ${code} then max(ts) filter (where sensor = ${code}) over earlier`).join(' ')} end`

/**
 * Per sensor, in one pass over the session's rows in time order: the
 * interval to the previous reading in whole microseconds (timestamps are
 * microseconds, so intervals are exact) and the timeline bucket of each
 * reading, grouped two ways at once: a histogram of intervals and the
 * readings per bucket. Everything else comes from the histogram, which has
 * one row per distinct interval (a handful for a steady sensor): the median
 * (as percentile_cont would interpolate it), jitter (standard deviation of
 * the intervals that are neither duplicates nor gaps, in exact numeric sums),
 * gaps, duplicates. A median by percentile_cont would sort every interval a
 * second time, and a timeline of its own would read every row a second time.
 *
 * $1 session, $2 and $3 the first and last reading's time (the timeline's
 * origin), $4 the bucket width as an interval, $5 the same in seconds.
 */
const readingsFactsSql = (bucketFunction: 'time_bucket' | 'date_bin') => `
with g as (
  select sensor, dt_us, bucket, grouping(dt_us) = 0 as by_interval, count(*) as n, min(ts) as first_ts, max(ts) as last_ts
  from (
    select sensor, ts,
      round(date_part('epoch', ts - ${PREVIOUS_OF_SAME_SENSOR_SQL}) * 1e6)::bigint as dt_us,
      floor(date_part('epoch', ${bucketFunction}($4::interval, ts, $2::timestamptz) - $2::timestamptz) / $5)::int as bucket
    from readings
    where session_id = $1 and ts >= $2 and ts <= $3
    window earlier as (order by ts rows between unbounded preceding and 1 preceding)
  ) d
  group by grouping sets ((sensor, dt_us), (sensor, bucket))
), h as (
  select sensor, dt_us, n, first_ts, last_ts from g where by_interval
), positive as (
  select sensor, dt_us, n, sum(n) over (partition by sensor order by dt_us) as upto, sum(n) over (partition by sensor) as total
  from h where dt_us > 0
), medians as materialized (
  -- Materialized: computed once; inlined, the planner may re-run it for every histogram row.
  select sensor,
    (min(dt_us) filter (where upto > floor((total - 1) / 2.0)) + min(dt_us) filter (where upto > ceil((total - 1) / 2.0))) / 2.0 as median_us
  from positive group by sensor
), per_sensor as (
  select h.sensor, sum(h.n)::int as readings, min(h.first_ts) as first_ts, max(h.last_ts) as last_ts,
    coalesce(sum(h.n) filter (where h.dt_us = 0), 0)::int as duplicates,
    m.median_us,
    sum(h.n) filter (where h.dt_us > 0 and h.dt_us <= ${GAP_FACTOR} * m.median_us) as regular,
    sum(h.n * h.dt_us::numeric) filter (where h.dt_us > 0 and h.dt_us <= ${GAP_FACTOR} * m.median_us) as regular_sum,
    sum(h.n * h.dt_us::numeric * h.dt_us) filter (where h.dt_us > 0 and h.dt_us <= ${GAP_FACTOR} * m.median_us) as regular_squares,
    coalesce(sum(h.n) filter (where h.dt_us > ${GAP_FACTOR} * m.median_us), 0)::int as gaps,
    max(h.dt_us) filter (where h.dt_us > ${GAP_FACTOR} * m.median_us) as longest_gap_us,
    coalesce(sum(h.n * (h.dt_us - m.median_us)) filter (where h.dt_us > ${GAP_FACTOR} * m.median_us), 0) as missing_us
  from h left join medians m on m.sensor = h.sensor
  group by h.sensor, m.median_us
)
select sensor, readings, duplicates, gaps,
  (median_us / 1000)::float8 as median_ms,
  case when regular > 0 then (sqrt(greatest(regular_squares / regular - (regular_sum / regular) ^ 2, 0)) / 1000)::float8 end as jitter_ms,
  (longest_gap_us / 1000.0)::float8 as longest_gap_ms,
  (missing_us / 1000)::float8 as missing_ms,
  ${isoTimestampSql('first_ts')} as first_ts, ${isoTimestampSql('last_ts')} as last_ts,
  date_part('epoch', last_ts - first_ts) as duration_s,
  (select json_agg(json_build_array(t.bucket, t.n) order by t.bucket) from g t
   where not t.by_interval and t.sensor = per_sensor.sensor) as timeline
from per_sensor
order by sensor`

/**
 * Where a session's batch ids start: its first_batch_id (0 for a WebSocket
 * phone; a push client's first message id), or a lower id that arrived late.
 */
const BATCH_ID_BASE_SQL = 'least((select first_batch_id from sessions where id = $1), (select min(batch_id) from session_batches where session_id = $1))'

/** Holes in the batch id sequence from its base, as inclusive ranges, in order. */
const LOST_RANGES_SQL = `
select prev + 1 as first_lost, batch_id - 1 as last_lost
from (select batch_id, coalesce(lag(batch_id) over (order by batch_id), ${BATCH_ID_BASE_SQL} - 1) as prev
      from session_batches where session_id = $1) b
where batch_id > prev + 1
order by batch_id
limit $2`

/**
 * The ledger in one statement: batches written, the resends refused as
 * conflicts (counted on the session row as they happened), the device time
 * span of the session (null bounds when a batch predates the ledger's device
 * times), and per batch the device time of its latest reading minus the
 * server's receive time, with its quartiles, extremes and trend over server
 * time.
 */
const LEDGER_FACTS_SQL = `
select count(*)::int as written, max(batch_id) as highest,
  ${BATCH_ID_BASE_SQL} as base,
  (select batch_conflicts from sessions where id = $1) as conflicts,
  ${isoTimestampSql('min(first_reading_at)')} as first, ${isoTimestampSql('max(last_reading_at)')} as last,
  bool_or(first_reading_at is null) as unknown_span,
  count(offset_ms)::int as clock_batches,
  percentile_cont(array[0.25, 0.5, 0.75]) within group (order by offset_ms) as quartiles,
  min(offset_ms) as min_ms, max(offset_ms) as max_ms,
  regr_slope(offset_ms, t) as slope,
  max(t) - min(t) as received_span_s
from (
  select batch_id, first_reading_at, last_reading_at,
    date_part('epoch', last_reading_at - received_at) * 1000 as offset_ms,
    case when last_reading_at is not null then date_part('epoch', received_at) end as t
  from session_batches where session_id = $1
) b`

/** The first and last reading's time, for sessions whose ledger has no device times. */
const READINGS_SPAN_SQL = `
select ${isoTimestampSql('min(ts)')} as first, ${isoTimestampSql('max(ts)')} as last
from readings where session_id = $1`

interface LedgerFactsRow {
  written: number
  highest: number | null
  base: number | null
  conflicts: number | null
  first: string | null
  last: string | null
  unknown_span: boolean | null
  clock_batches: number
  quartiles: number[] | null
  min_ms: number | null
  max_ms: number | null
  slope: number | null
  received_span_s: number | null
}

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
  /** [bucket, readings] pairs in bucket order. */
  timeline: Array<[number, number]> | null
}

export interface FactsOptions {
  /** TimescaleDB's time_bucket where the extension is present, PostgreSQL's date_bin otherwise. */
  timescaledb: boolean
}

/**
 * Gathers what the report is made of, for an ended session, in three
 * statements (four for a session older than the ledger's device times): the
 * ledger for batches, device span and clock offsets; one pass over the
 * session's readings between the first and last device time (exact bounds,
 * which let TimescaleDB skip every chunk outside them); the holes in the
 * batch ids.
 */
export async function gatherSessionFacts (db: Queryable, session: EndedSessionRow, options: FactsOptions): Promise<SessionFacts> {
  const { rows: [ledger] } = await db.query<LedgerFactsRow>(LEDGER_FACTS_SQL, [session.id])
  const span = ledger && ledger.unknown_span === false
    ? { first: ledger.first, last: ledger.last }
    : (await db.query<{ first: string | null, last: string | null }>(READINGS_SPAN_SQL, [session.id])).rows[0]
  const { sensors, timeline } = await gatherReadingFacts(db, session.id, span?.first ?? null, span?.last ?? null, options)
  const { rows: lostRows } = await db.query<{ first_lost: number, last_lost: number }>(LOST_RANGES_SQL, [session.id, MAX_LOST_RANGES + 1])

  const batches: BatchFacts = {
    written: ledger?.written ?? 0,
    highestBatchId: ledger?.highest ?? null,
    firstBatchId: ledger?.base ?? 0,
    conflictingResends: ledger?.conflicts ?? 0,
    lostRanges: lostRows.slice(0, MAX_LOST_RANGES).map(row => [row.first_lost, row.last_lost]),
    lostRangesTruncated: lostRows.length > MAX_LOST_RANGES
  }

  const quartiles = ledger?.quartiles
  const clock: ClockFacts = {
    batches: ledger?.clock_batches ?? 0,
    quartilesMs: quartiles && quartiles.length === 3 ? [quartiles[0] as number, quartiles[1] as number, quartiles[2] as number] : null,
    minMs: ledger?.min_ms ?? null,
    maxMs: ledger?.max_ms ?? null,
    slopeMsPerSecond: ledger?.slope ?? null,
    receivedSpanSeconds: ledger?.received_span_s ?? null
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
    timeline
  }
}

/**
 * Per-sensor figures and the timeline (readings per sensor in at most
 * MAX_TIMELINE_BUCKETS equal buckets from the first reading on), from one
 * pass over the readings between the session's first and last device time.
 */
async function gatherReadingFacts (db: Queryable, sessionId: number, first: string | null, last: string | null, options: FactsOptions): Promise<{ sensors: SensorFacts[], timeline: TimelineFacts }> {
  if (first === null || last === null) return { sensors: [], timeline: { bucketSeconds: 1, start: null, counts: [] } }
  const spanSeconds = ((parseIsoTimestampMicros(last) ?? 0) - (parseIsoTimestampMicros(first) ?? 0)) / 1e6
  const bucketSeconds = Math.floor(spanSeconds / MAX_TIMELINE_BUCKETS) + 1
  const { rows } = await db.query<SensorFactsRow>(readingsFactsSql(options.timescaledb ? 'time_bucket' : 'date_bin'),
    [sessionId, first, last, `${bucketSeconds} seconds`, bucketSeconds])
  // A code outside the list cannot be written by the service; it is left out rather than misnamed.
  const known = rows.filter(row => SENSORS[row.sensor] !== undefined)
  const sensors: SensorFacts[] = known.map(row => ({
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
  const counts = known.flatMap(row => (row.timeline ?? []).map(([bucket, readings]) => ({ bucket, sensor: SENSORS[row.sensor] as SensorName, readings })))
  return { sensors, timeline: { bucketSeconds, start: first, counts } }
}
