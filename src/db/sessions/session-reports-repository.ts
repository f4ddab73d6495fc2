import type { SessionReport } from '../../schemas/session-report.js'
import type { PoolClient } from '../pool.js'
import type { Queryable } from '../queryable.js'
import type { EndedSessionRow } from './session-facts.js'

/** The reaper gives up on a session whose report failed this many times. */
export const MAX_REPORT_ATTEMPTS = 3

/** An ended or active session as a report needs it; destroyedAt null while it records. */
export interface SessionForReport extends EndedSessionRow {
  destroyed_at: Date | null
}

const SESSION_FOR_REPORT_SQL = `
select s.id, s.metadata, s.integrity, s.total_sensor_readings_sent, s.total_sensor_readings_written, s.destroyed_at
from sessions s`

/**
 * Bounds every later statement of the transaction, the wait for a lock
 * included: a report that takes longer fails rather than hold a connection
 * and the session's lock.
 */
export async function boundStatements (client: PoolClient, timeoutMs: number): Promise<void> {
  await client.query(`set local statement_timeout = ${Math.max(1, Math.floor(timeoutMs))}`)
}

/** Locks the session's row for its report (two instances never compute one report at once). */
export async function lockSessionForReport (client: PoolClient, sessionId: number): Promise<SessionForReport | undefined> {
  const { rows: [row] } = await client.query<SessionForReport>(`${SESSION_FOR_REPORT_SQL} where s.id = $1 for no key update of s`, [sessionId])
  return row
}

/**
 * Claims the ended session whose report is due the longest, skipping those
 * another instance holds and those listed in `skip`.
 */
export async function claimPendingReport (client: PoolClient, skip: number[]): Promise<SessionForReport | undefined> {
  const { rows: [row] } = await client.query<SessionForReport>(
    `${SESSION_FOR_REPORT_SQL}
     where s.report_pending and s.report_attempts < $1 and not (s.id = any($2::bigint[]))
     order by s.destroyed_at limit 1
     for no key update of s skip locked`, [MAX_REPORT_ATTEMPTS, skip])
  return row
}

/** Stores the report and clears the session's pending mark, in one statement. */
export async function storeSessionReport (client: PoolClient, report: SessionReport): Promise<void> {
  await client.query(
    `with stored as (
       insert into session_reports (session_id, computed_at, complete, summary, report) values ($1, $2, $3, $4, $5)
       on conflict (session_id) do update set computed_at = excluded.computed_at, complete = excluded.complete,
         summary = excluded.summary, report = excluded.report
       returning session_id)
     update sessions set report_pending = false where id = (select session_id from stored)`,
    [report.sessionId, report.computedAt, report.summary.complete, JSON.stringify(report.summary), JSON.stringify(report)])
}

/** Counts a failed attempt at the session's report; best effort (the database may be the failure). */
export async function countFailedReportAttempt (db: Queryable, sessionId: number): Promise<void> {
  await db.query('update sessions set report_attempts = report_attempts + 1 where id = $1', [sessionId]).catch(() => {})
}

/** The stored report, if the session has one. */
export async function findSessionReport (db: Queryable, sessionId: number): Promise<SessionReport | undefined> {
  const { rows: [row] } = await db.query<{ report: SessionReport }>('select report from session_reports where session_id = $1', [sessionId])
  return row?.report
}

/**
 * Marks an ended session's report as due again, with fresh attempts: the
 * reaper recomputes it. The stored report is withdrawn in the same statement:
 * it judged the session against what its metadata no longer says, and until
 * the new one is stored the session shows none (GET /sessions/:id/report
 * computes it on request).
 */
export async function markReportPending (db: Queryable, sessionId: number): Promise<void> {
  await db.query(
    `with marked as (
       update sessions set report_pending = true, report_attempts = 0 where id = $1 and destroyed_at is not null returning id)
     delete from session_reports where session_id in (select id from marked)`, [sessionId])
}
