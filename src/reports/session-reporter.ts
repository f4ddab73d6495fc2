import { ConcurrencyLimit } from '../concurrency-limit.js'
import type { Pool } from '../db/pool.js'
import type { EndedSession } from '../db/session-lifecycle.js'
import { computePendingReports, ensureSessionReport, type EnsureReportResult, type ReportOptions } from '../db/session-reports-repository.js'
import type { Log } from '../logger.js'
import type { ReportSummary } from '../schemas/session-report.js'
import { withTimeout } from '../timeout.js'

/**
 * Computes and serves completeness reports. Every path that ends a session
 * (the phone, expiry, an admin) asks for the report before it tells the
 * phone, so session_destroyed carries the summary; a report that cannot be
 * computed then is left to the reaper's sweep, and the phone hears
 * `report: null` rather than wait.
 */
export class SessionReporter {
  private readonly options: ReportOptions
  private readonly limit: ConcurrencyLimit

  /**
   * maxConcurrent: reports computed at once by this instance. They share the
   * pool with ingest, and many phones ending long sessions together must not
   * take every connection the writers need.
   */
  constructor (private readonly pool: Pool, options: ReportOptions, private readonly log: Log, maxConcurrent = 2) {
    this.limit = new ConcurrencyLimit(maxConcurrent)
    this.options = {
      ...options,
      onSweepFailure: (sessionId, err) => log.warn({ err, sessionId }, 'Session report not computed; retried on a later pass.')
    }
  }

  /** The ended session with its report summary, computed first if it has none. */
  async withSummary (ended: EndedSession): Promise<EndedSession> {
    return ended.report ? ended : { ...ended, report: await this.summaryOf(ended.id) }
  }

  /** The ended sessions with their report summaries, computing the missing ones one after another. */
  async withSummaries (ended: EndedSession[]): Promise<EndedSession[]> {
    const result: EndedSession[] = []
    for (const session of ended) result.push(await this.withSummary(session))
    return result
  }

  /** The full report, computed first if needed (or again, with recompute). */
  async report (sessionId: number, recompute = false): Promise<EnsureReportResult> {
    return this.limit.run(() => ensureSessionReport(this.pool, sessionId, { ...this.options, recompute }))
  }

  /** Computes up to `limit` reports nobody computed yet (ended while no phone was connected, or after a failure). */
  async sweep (limit: number): Promise<number[]> {
    return this.limit.run(() => computePendingReports(this.pool, limit, this.options))
  }

  /**
   * The report's summary, or null when it fails or is not ready within the
   * report timeout, waiting for a free slot included: whoever waits on it (a
   * phone for session_destroyed) is answered in bounded time. A computation
   * still running then finishes and stores the report; the reaper computes
   * any that failed.
   */
  async summaryOf (sessionId: number, recompute = false): Promise<ReportSummary | null> {
    try {
      const result = await withTimeout(this.report(sessionId, recompute), this.options.timeoutMs, `the report of session ${sessionId}`)
      return result.status === 'ready' ? result.report.summary : null
    } catch (err) {
      this.log.warn({ err, sessionId }, 'Session report not ready; the reaper will compute it if it failed.')
      return null
    }
  }
}
