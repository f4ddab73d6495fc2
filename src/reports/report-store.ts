import { withTransaction, type Pool, type PoolClient } from '../db/pool.js'
import { gatherSessionFacts, type EndedSessionRow, type FactsOptions } from '../db/sessions/session-facts.js'
import {
  boundStatements, claimPendingReport, countFailedReportAttempt, findSessionReport, lockSessionForReport, storeSessionReport
} from '../db/sessions/session-reports-repository.js'
import { REPORT_VERSION, type SessionReport } from '../schemas/session-report.js'
import { buildReport } from './build-report.js'

export { MAX_REPORT_ATTEMPTS } from '../db/sessions/session-reports-repository.js'

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

/** Report options for a database: the service and the CLI build them the same way. */
export function reportOptions (storage: { readingsHypertable: boolean }, timeoutMs: number, observer?: ReportObserver): ReportOptions {
  return { timescaledb: storage.readingsHypertable, timeoutMs, observer }
}

export type EnsureReportResult =
  | { status: 'ready', report: SessionReport }
  | { status: 'active' }
  | { status: 'not-found' }

/** Gather the facts in SQL, build the report (pure), store it: one report, under the session's lock. */
async function computeAndStore (client: PoolClient, session: EndedSessionRow, options: ReportOptions): Promise<SessionReport> {
  const started = performance.now()
  const facts = await gatherSessionFacts(client, session, options)
  const report = buildReport(facts, new Date())
  await storeSessionReport(client, report)
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
      await boundStatements(client, options.timeoutMs)
      const row = await lockSessionForReport(client, sessionId)
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
    await countFailedReportAttempt(pool, sessionId)
    throw err
  }
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
        await boundStatements(client, options.timeoutMs)
        const row = await claimPendingReport(client, failed)
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
      await countFailedReportAttempt(pool, claimed)
      options.onSweepFailure?.(claimed, err)
    }
  }
  return done
}
