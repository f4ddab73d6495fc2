import type { Integrity } from '../schemas/integrity.js'
import type { Pool, PoolClient } from './pool.js'
import type { Queryable } from './queryable.js'

/** The ledger of one session in figures: what session_batches says was written. */
export interface LedgerFacts {
  batches: number
  /** sum(reading_count) */
  readings: number
  highestBatchId: number | null
  /** Where the session's batch ids start (sessions.first_batch_id, or a lower id that arrived late). */
  firstBatchId: number
  negativeBatchIds: number
  lowestNegativeBatchId: number | null
  nonPositiveCounts: number
  firstNonPositiveBatchId: number | null
  /** Batches whose first_reading_at is after their last_reading_at. */
  invertedSpans: number
  firstInvertedBatchId: number | null
}

/**
 * The counts a stored completeness report holds, as JSON values: a report is
 * only trusted as far as it is readable, so the checks, not SQL casts, decide
 * what a missing or non-numeric field means.
 */
export interface StoredReportCounts {
  /** report.integrity.written */
  written: unknown
  /** report.sensors[*].readings, one per sensor */
  sensorReadings: unknown[]
  /** report.batches.written, .highestBatchId, .lost and report.summary.lostBatches */
  batchesWritten: unknown
  highestBatchId: unknown
  lostBatches: unknown
  summaryLostBatches: unknown
}

/** One session's counts as its row, its ledger, its readings and its stored report give them, read in one snapshot. */
export interface SessionAuditFacts {
  sessionId: number
  ended: boolean
  integrity: Integrity | null
  /** sessions.total_sensor_readings_written */
  written: number
  /** sessions.total_sensor_readings_sent: what the phone said it sent */
  sent: number | null
  ledger: LedgerFacts
  /** count(*) of the session's rows in readings */
  rows: number
  /** null when the session has no stored report */
  report: StoredReportCounts | null
}

/** Which sessions `verify` checks; every given filter applies. */
export interface AuditScope {
  sessionId?: number
  userId?: number
  /** created_at at or after */
  from?: Date
  /** created_at before */
  to?: Date
}

interface FactsRow {
  id: number
  ended: boolean
  integrity: Integrity | null
  written: number
  sent: number | null
  batches: number
  ledger_readings: number
  highest_batch_id: number | null
  first_batch_id: number
  negative_batch_ids: number
  lowest_negative_batch_id: number | null
  non_positive_counts: number
  first_non_positive_batch_id: number | null
  inverted_spans: number
  first_inverted_batch_id: number | null
  rows: number
  has_report: boolean
  report_written: unknown
  report_sensor_readings: unknown[] | null
  report_batches_written: unknown
  report_highest_batch_id: unknown
  report_lost_batches: unknown
  report_summary_lost_batches: unknown
}

/**
 * The facts of the sessions `picked` selects, in one statement so that every
 * count comes from one snapshot: a batch committing meanwhile (ledger, total
 * and readings in one transaction) is seen whole or not at all, never as a
 * false mismatch. Each session's readings are counted by a lateral count
 * over the (session_id, ts) index, an index-only scan per session, rather
 * than a join the planner might turn into a scan of the whole readings table.
 */
const factsSql = (picked: string) => `
with picked as materialized (${picked})
select p.id, p.destroyed_at is not null as ended, p.integrity,
  p.total_sensor_readings_written as written, p.total_sensor_readings_sent as sent,
  b.batches, b.ledger_readings, b.highest_batch_id,
  b.negative_batch_ids, b.lowest_negative_batch_id,
  b.non_positive_counts, b.first_non_positive_batch_id,
  b.inverted_spans, b.first_inverted_batch_id,
  r.rows,
  sr.session_id is not null as has_report,
  sr.report #> '{integrity,written}' as report_written,
  jsonb_path_query_array(sr.report, '$.sensors.*.readings', '{}', true) as report_sensor_readings,
  sr.report #> '{batches,written}' as report_batches_written,
  sr.report #> '{batches,highestBatchId}' as report_highest_batch_id,
  sr.report #> '{batches,lost}' as report_lost_batches,
  sr.report #> '{summary,lostBatches}' as report_summary_lost_batches
from picked p
cross join lateral (
  select count(*) as batches,
    coalesce(sum(reading_count), 0)::bigint as ledger_readings,
    max(batch_id) as highest_batch_id,
    least(p.first_batch_id, min(batch_id)) as first_batch_id,
    count(*) filter (where batch_id < 0) as negative_batch_ids,
    min(batch_id) filter (where batch_id < 0) as lowest_negative_batch_id,
    count(*) filter (where reading_count <= 0) as non_positive_counts,
    min(batch_id) filter (where reading_count <= 0) as first_non_positive_batch_id,
    count(*) filter (where first_reading_at > last_reading_at) as inverted_spans,
    min(batch_id) filter (where first_reading_at > last_reading_at) as first_inverted_batch_id
  from session_batches where session_id = p.id
) b
cross join lateral (select count(*) as rows from readings where session_id = p.id) r
left join session_reports sr on sr.session_id = p.id
order by p.id`

const SESSION_COLUMNS = 'id, destroyed_at, integrity, total_sensor_readings_written, total_sensor_readings_sent, first_batch_id'

const SCOPED_CHUNK_SQL = factsSql(`
  select ${SESSION_COLUMNS} from sessions
  where id > $1
    and ($2::bigint is null or id = $2)
    and ($3::bigint is null or user_id = $3)
    and ($4::timestamptz is null or created_at >= $4)
    and ($5::timestamptz is null or created_at < $5)
  order by id
  limit $6`)

// The primary key read backwards: active sessions, the only ones skipped, are few and at the top.
const NEWEST_ENDED_SQL = factsSql(`
  select ${SESSION_COLUMNS} from sessions
  where id > $1 and destroyed_at is not null
  order by id desc
  limit $2`)

function toFacts (row: FactsRow): SessionAuditFacts {
  return {
    sessionId: row.id,
    ended: row.ended,
    integrity: row.integrity,
    written: row.written,
    sent: row.sent,
    ledger: {
      batches: row.batches,
      readings: row.ledger_readings,
      highestBatchId: row.highest_batch_id,
      firstBatchId: row.first_batch_id ?? 0,
      negativeBatchIds: row.negative_batch_ids,
      lowestNegativeBatchId: row.lowest_negative_batch_id,
      nonPositiveCounts: row.non_positive_counts,
      firstNonPositiveBatchId: row.first_non_positive_batch_id,
      invertedSpans: row.inverted_spans,
      firstInvertedBatchId: row.first_inverted_batch_id
    },
    rows: row.rows,
    report: row.has_report
      ? {
          written: row.report_written,
          sensorReadings: row.report_sensor_readings ?? [],
          batchesWritten: row.report_batches_written,
          highestBatchId: row.report_highest_batch_id,
          lostBatches: row.report_lost_batches,
          summaryLostBatches: row.report_summary_lost_batches
        }
      : null
  }
}

/**
 * The facts of the next `limit` sessions in `scope` with an id above
 * `afterId`, in id order: a cursor over every session without OFFSET.
 */
export async function auditScopedSessions (db: Queryable, scope: AuditScope, afterId: number, limit: number): Promise<SessionAuditFacts[]> {
  const { rows } = await db.query<FactsRow>(SCOPED_CHUNK_SQL, [
    afterId, scope.sessionId ?? null, scope.userId ?? null, scope.from ?? null, scope.to ?? null, limit
  ])
  return rows.map(toFacts)
}

/** The facts of the `limit` newest ended sessions with an id above `afterId`. */
export async function auditNewestEndedSessions (db: Queryable, afterId: number, limit: number): Promise<SessionAuditFacts[]> {
  const { rows } = await db.query<FactsRow>(NEWEST_ENDED_SQL, [afterId, limit])
  return rows.map(toFacts)
}

/**
 * Runs fn on one checked-out client whose every statement is cancelled by
 * the server after `timeoutMs`: an audit never holds a connection for long,
 * and runs one statement at a time.
 */
export async function withAuditClient<T> (pool: Pool, timeoutMs: number, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  let broken = false
  // Without a listener a connection lost between statements would be an unhandled 'error' event.
  const onError = () => { broken = true }
  client.on('error', onError)
  try {
    await client.query(`set statement_timeout = ${Math.max(1, Math.floor(timeoutMs))}`)
    return await fn(client)
  } finally {
    // The timeout is a session setting: it must not follow the client back into the pool.
    if (!broken) await client.query('reset statement_timeout').catch(() => { broken = true })
    client.off('error', onError)
    client.release(broken)
  }
}

/** True when PostgreSQL cancelled a statement for exceeding statement_timeout. */
export function isStatementTimeout (err: unknown): boolean {
  return (err as { code?: unknown } | undefined)?.code === '57014'
}
