import { buildReport } from '../reports/build-report.js'
import { REPORT_VERSION, type SessionReport } from '../schemas/session-report.js'
import { withTransaction, type Pool, type PoolClient } from './pool.js'
import type { Queryable } from './queryable.js'
import { gatherSessionFacts, type EndedSessionRow, type FactsOptions } from './session-facts.js'

/** Hooks for metrics. */
export interface ReportObserver {
  computed?: (info: { complete: boolean, seconds: number }) => void
  failed?: () => void
}

export interface ReportOptions extends FactsOptions {
  /** Longest one report's statements may run; a longer one fails and is retried by the reaper. */
  timeoutMs: number
  observer?: ReportObserver
  /** Told of a report the sweep could not compute (it is retried on later passes). */
  onSweepFailure?: (sessionId: number, err: unknown) => void
}

export type EnsureReportResult =
  | { status: 'ready', report: SessionReport }
  | { status: 'active' }
  | { status: 'not-found' }

/** The reaper gives up on a session whose report failed this many times. */
export const MAX_REPORT_ATTEMPTS = 3

interface LockedSessionRow extends EndedSessionRow {
  destroyed_at: Date | null
}

const SESSION_FOR_REPORT_SQL = `
select s.id, s.metadata, s.integrity, s.total_sensor_readings_sent, s.total_sensor_readings_written, s.destroyed_at
from sessions s`

/**
 * Bounds every statement of the transaction, the wait for the session's lock
 * included: a report that takes longer fails rather than hold a connection
 * and the session's lock.
 */
async function boundStatements (client: PoolClient, options: ReportOptions): Promise<void> {
  await client.query(`set local statement_timeout = ${Math.max(1, Math.floor(options.timeoutMs))}`)
}

async function computeAndStore (client: PoolClient, session: EndedSessionRow, options: ReportOptions): Promise<SessionReport> {
  const started = performance.now()
  const facts = await gatherSessionFacts(client, session, options)
  const report = buildReport(facts, new Date())
  await client.query(
    `with stored as (
       insert into session_reports (session_id, computed_at, complete, summary, report) values ($1, $2, $3, $4, $5)
       on conflict (session_id) do update set computed_at = excluded.computed_at, complete = excluded.complete,
         summary = excluded.summary, report = excluded.report
       returning session_id)
     update sessions set report_pending = false where id = (select session_id from stored)`,
    [session.id, report.computedAt, report.summary.complete, JSON.stringify(report.summary), JSON.stringify(report)])
  options.observer?.computed?.({ complete: report.summary.complete, seconds: (performance.now() - started) / 1000 })
  return report
}

/**
 * The session's report, computed and stored first if it has none (or when
 * `recompute`). The session row is locked while the report is computed, so
 * two instances never compute the same one: the second waits and reads it.
 * The wait and each statement are bounded by `timeoutMs`.
 */
export async function ensureSessionReport (pool: Pool, sessionId: number, options: ReportOptions & { recompute?: boolean }): Promise<EnsureReportResult> {
  try {
    return await withTransaction(pool, async client => {
      await boundStatements(client, options)
      const { rows: [row] } = await client.query<LockedSessionRow>(`${SESSION_FOR_REPORT_SQL} where s.id = $1 for no key update of s`, [sessionId])
      if (!row) return { status: 'not-found' }
      if (!row.destroyed_at) return { status: 'active' }
      if (!options.recompute) {
        // Read after the lock, in a statement of its own: a report another instance stored while
        // this one waited is seen (a join in the locking statement would see the older snapshot).
        const stored = await findSessionReport(client, sessionId)
        // A report of an older version means something else: it is computed again.
        if (stored && stored.version === REPORT_VERSION) return { status: 'ready', report: stored }
      }
      return { status: 'ready', report: await computeAndStore(client, row, options) }
    })
  } catch (err) {
    options.observer?.failed?.()
    await countFailedAttempt(pool, sessionId)
    throw err
  }
}

async function countFailedAttempt (db: Queryable, sessionId: number): Promise<void> {
  await db.query('update sessions set report_attempts = report_attempts + 1 where id = $1', [sessionId]).catch(() => {})
}

/**
 * Computes the reports of ended sessions that have none, oldest end first, at
 * most `limit`. Each is claimed with skip locked, so several instances share
 * the work and none computes a report another is computing. Returns the ids
 * whose report was stored.
 */
export async function computePendingReports (pool: Pool, limit: number, options: ReportOptions): Promise<number[]> {
  const done: number[] = []
  // A report that failed in this pass waits for the next one: its attempts are spread over passes.
  const failed: number[] = []
  for (let i = 0; i < limit; i++) {
    let claimed: number | undefined
    try {
      const stored = await withTransaction(pool, async client => {
        await boundStatements(client, options)
        const { rows: [row] } = await client.query<LockedSessionRow>(
          `${SESSION_FOR_REPORT_SQL}
           where s.report_pending and s.report_attempts < $1 and not (s.id = any($2::bigint[]))
           order by s.destroyed_at limit 1
           for no key update of s skip locked`, [MAX_REPORT_ATTEMPTS, failed])
        if (!row) return false
        claimed = row.id
        await computeAndStore(client, row, options)
        return true
      })
      if (!stored) break
      done.push(claimed as number)
    } catch (err) {
      // Before a session was claimed the database itself failed: the next pass tries again.
      if (claimed === undefined) throw err
      // One failing report must not hold up the others; it is counted and retried on later passes.
      failed.push(claimed)
      options.observer?.failed?.()
      await countFailedAttempt(pool, claimed)
      options.onSweepFailure?.(claimed, err)
    }
  }
  return done
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
