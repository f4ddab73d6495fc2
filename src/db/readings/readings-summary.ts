import { GAP_FACTOR } from '../../schemas/session-report.js'
import { SENSORS, type SensorName } from '../../schemas/sensors.js'
import { withTransaction, type ClientSource, type PoolClient } from '../pool.js'
import { EXACT_FLOAT_OUTPUT_SQL, isoTimestampSql } from './readings-sql.js'

/** Readings sampled from the start of a session to estimate each sensor's median interval when it has no report yet. */
export const MEDIAN_SAMPLE_READINGS = 3000
/** At most this many gaps are listed per answer; a plot cannot show more as separate bands anyway. */
export const MAX_SUMMARY_GAPS = 500

export interface SummaryRange {
  /** ISO-8601; the session's first reading when absent. */
  from?: string | undefined
  /** ISO-8601, exclusive; just past the session's last reading when absent. */
  to?: string | undefined
  /** Instead of from/to: this many seconds up to the session's last reading. */
  lastSeconds?: number | undefined
  /** How many equal buckets the range is cut into. */
  buckets: number
}

/** One bucket of one sensor: its index from the range's start, its readings, and each axis's extremes. */
export type SummaryBucket = [index: number, readings: number, xMin: number, xMax: number, yMin: number, yMax: number, zMin: number, zMax: number]

export interface SensorSummary {
  sensor: SensorName
  /** Readings of this sensor in the range. */
  readings: number
  /** The median interval gaps are measured against: the report's, or estimated from the session's first readings. */
  medianIntervalMs: number | null
  /** Non-empty buckets only, in time order. */
  buckets: SummaryBucket[]
}

export interface SummaryGap {
  sensor: SensorName
  /** The reading before the gap and the one after it (ISO-8601 with microseconds). */
  from: string
  to: string
  ms: number
}

export interface ReadingsSummary {
  /** The session's first and last reading, whatever the range: the extent a plot zooms out to. */
  sessionFirst: string | null
  sessionLast: string | null
  /** The range summarised, `to` exclusive; null when none was asked for and the session has no reading. Bucket i starts at from + i x bucketMicros. */
  from: string | null
  to: string | null
  bucketMicros: number
  buckets: number
  sensors: SensorSummary[]
  gaps: SummaryGap[]
  gapsTruncated: boolean
}

export interface SummaryOptions {
  /** TimescaleDB's time_bucket where readings is a hypertable, PostgreSQL's date_bin otherwise. */
  timescaledb: boolean
  /** Cancels a summary that runs longer (statement_timeout), so a huge range cannot hold an export connection for long. */
  timeoutMs: number
}

const epochMicrosSql = (expression: string) => `(extract(epoch from ${expression}) * 1000000)::bigint::text`

/**
 * The session's first and last reading (two probes at the ends of the
 * (session_id, ts) index) and the asked bounds, as exact epoch microseconds.
 */
const SPAN_SQL = `
select ${isoTimestampSql('first')} as first, ${isoTimestampSql('last')} as last,
  ${epochMicrosSql('first')} as first_us, ${epochMicrosSql('last')} as last_us,
  ${epochMicrosSql('$2::timestamptz')} as from_us, ${epochMicrosSql('$3::timestamptz')} as to_us
from (select (select min(ts) from readings where session_id = $1) as first,
             (select max(ts) from readings where session_id = $1) as last) s`

/**
 * The median interval per sensor: the stored report's where the session has
 * one (the gaps it counts are the ones shaded), else estimated from the
 * session's first readings, read in index order.
 */
const MEDIANS_SQL = `
with reported as (
  select (report->'sensors'->s.name->>'medianIntervalMs')::float8 as median_ms, s.code
  from session_reports, unnest($2::text[]) with ordinality as s(name, code)
  where session_id = $1
), sampled as (
  select sensor, percentile_cont(0.5) within group (order by dt_ms) as median_ms
  from (
    select sensor, date_part('epoch', ts - lag(ts) over (partition by sensor order by ts)) * 1000 as dt_ms
    from (select sensor, ts from readings where session_id = $1 order by ts limit $3) first_readings
  ) d
  where dt_ms > 0
  group by sensor
)
select code - 1 as sensor, median_ms from reported where median_ms is not null
union all
select sensor, median_ms from sampled where not exists (select 1 from reported where median_ms is not null)`

/**
 * One pass over the range's readings in the (session_id, ts) index: per
 * sensor and bucket the count, each axis's min and max, and the first and
 * last reading's time. A gap is a step from one non-empty bucket to the next
 * (adjacent or across empty ones) longer than GAP_FACTOR times the sensor's
 * median interval: every gap that crosses a bucket boundary, which at the
 * plot's resolution is every gap wider than a bucket. The rows are few
 * (buckets x sensors), so the window over them costs nothing.
 *
 * $1 session, $2 and $3 the range, $4 the bucket width as an interval, $5 the
 * same in microseconds, $6 the gap threshold per sensor code in microseconds.
 */
const summarySql = (bucketFunction: 'time_bucket' | 'date_bin') => `
with b as (
  select sensor, ${bucketFunction}($4::interval, ts, $2::timestamptz) as bucket_start, count(*)::int as n,
    min(x) as x_min, max(x) as x_max, min(y) as y_min, max(y) as y_max, min(z) as z_min, max(z) as z_max,
    min(ts) as first_ts, max(ts) as last_ts
  from readings
  where session_id = $1 and ts >= $2::timestamptz and ts < $3::timestamptz
  group by sensor, bucket_start
), o as (
  select b.*, lag(last_ts) over (partition by sensor order by bucket_start) as previous_ts,
    round(date_part('epoch', bucket_start - $2::timestamptz) * 1e6 / $5)::int as bucket
  from b
)
select sensor, sum(n)::int as readings,
  json_agg(json_build_array(bucket, n, x_min, x_max, y_min, y_max, z_min, z_max) order by bucket_start) as buckets,
  json_agg(json_build_array(${isoTimestampSql('previous_ts')}, ${isoTimestampSql('first_ts')},
      date_part('epoch', first_ts - previous_ts) * 1000) order by bucket_start)
    filter (where date_part('epoch', first_ts - previous_ts) * 1e6 > ($6::float8[])[sensor + 1]) as gaps
from o
group by sensor
order by sensor`

interface SpanRow {
  first: string | null
  last: string | null
  first_us: string | null
  last_us: string | null
  from_us: string | null
  to_us: string | null
}
interface SummaryRow { sensor: number, readings: number, buckets: SummaryBucket[], gaps: Array<[string, string, number]> | null }

const MICROS_PER_SECOND = 1_000_000n

/** ISO-8601 in UTC with six fractional digits, like isoTimestampSql. */
function isoOfMicros (micros: bigint): string {
  const fraction = ((micros % MICROS_PER_SECOND) + MICROS_PER_SECOND) % MICROS_PER_SECOND
  const seconds = (micros - fraction) / MICROS_PER_SECOND
  return `${new Date(Number(seconds) * 1000).toISOString().slice(0, 19)}.${String(fraction).padStart(6, '0')}Z`
}

/**
 * A session's readings in `range.buckets` equal buckets: per sensor the
 * extremes of each axis in each non-empty bucket (a min/max envelope that
 * draws the same outline as the raw signal at that width), and the gaps'
 * positions. What a plot needs in one statement over the range, however
 * many readings it holds; zooming in asks again for the narrower range.
 */
export async function summarizeReadings (pool: ClientSource, sessionId: number, range: SummaryRange, options: SummaryOptions): Promise<ReadingsSummary> {
  return withTransaction(pool, async client => {
    await client.query(`set local statement_timeout = ${Math.max(1, Math.round(options.timeoutMs))}`)
    await client.query(EXACT_FLOAT_OUTPUT_SQL)
    const { rows: [span] } = await client.query<SpanRow>(SPAN_SQL, [sessionId, range.from ?? null, range.to ?? null])
    const micros = (text: string | null | undefined) => text ? BigInt(text) : undefined
    const lastMicros = micros(span?.last_us)
    const toMicrosExclusive = micros(span?.to_us) ?? (lastMicros === undefined ? undefined : lastMicros + 1n)
    const fromMicros = range.lastSeconds !== undefined && toMicrosExclusive !== undefined
      ? toMicrosExclusive - BigInt(Math.round(range.lastSeconds * 1e6))
      : micros(span?.from_us) ?? micros(span?.first_us)
    const empty = { sessionFirst: span?.first ?? null, sessionLast: span?.last ?? null, sensors: [], gaps: [], gapsTruncated: false, buckets: range.buckets }
    if (fromMicros === undefined || toMicrosExclusive === undefined || toMicrosExclusive <= fromMicros) {
      return { ...empty, from: null, to: null, bucketMicros: 1 }
    }
    const bucketCount = BigInt(range.buckets)
    const bucketMicros = (toMicrosExclusive - fromMicros + bucketCount - 1n) / bucketCount
    const from = isoOfMicros(fromMicros)
    const to = isoOfMicros(toMicrosExclusive)
    const medians = await sensorMedians(client, sessionId)
    const thresholds = SENSORS.map((_, code) => {
      const median = medians.get(code)
      return median === undefined ? null : median * 1000 * GAP_FACTOR
    })
    const { rows } = await client.query<SummaryRow>(summarySql(options.timescaledb ? 'time_bucket' : 'date_bin'),
      [sessionId, from, to, `${bucketMicros} microseconds`, bucketMicros.toString(), thresholds])
    const known = rows.filter(row => SENSORS[row.sensor] !== undefined)
    const gaps = known.flatMap(row => (row.gaps ?? []).map(([gapFrom, gapTo, ms]) =>
      ({ sensor: SENSORS[row.sensor] as SensorName, from: gapFrom, to: gapTo, ms })))
      .sort((a, b) => a.from < b.from ? -1 : a.from > b.from ? 1 : 0)
    return {
      ...empty,
      from,
      to,
      bucketMicros: Number(bucketMicros),
      sensors: known.map(row => ({
        sensor: SENSORS[row.sensor] as SensorName,
        readings: row.readings,
        medianIntervalMs: medians.get(row.sensor) ?? null,
        buckets: row.buckets
      })),
      gaps: gaps.slice(0, MAX_SUMMARY_GAPS),
      gapsTruncated: gaps.length > MAX_SUMMARY_GAPS
    }
  })
}

async function sensorMedians (client: PoolClient, sessionId: number): Promise<Map<number, number>> {
  const { rows } = await client.query<{ sensor: number, median_ms: number }>(MEDIANS_SQL, [sessionId, SENSORS, MEDIAN_SAMPLE_READINGS])
  return new Map(rows.map(row => [row.sensor, row.median_ms]))
}
