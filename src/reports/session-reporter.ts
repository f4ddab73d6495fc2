import type { Pool } from '../db/pool.js'
import type { EndedSession } from '../db/session-lifecycle.js'
import { computePendingReports, ensureSessionReport, type EnsureReportResult, type ReportOptions } from '../db/session-reports-repository.js'
import type { Log } from '../logger.js'
import type { ReportSummary } from '../schemas/session-report.js'

/**
 * Computes and serves completeness reports. Every path that ends a session
 * (the phone, expiry, an admin) asks for the report before it tells the
 * phone, so session_destroyed carries the summary; a report that cannot be
 * computed then is left to the reaper's sweep, and the phone hears
 * `report: null` rather than wait.
 */
export class SessionReporter {
  private readonly options: ReportOptions
  private running = 0
  private readonly queue: Array<() => void> = []

  /**
   * maxConcurrent: reports computed at once by this instance. They share the
   * pool with ingest, and many phones ending long sessions together must not
   * take every connection the writers need.
   */
  constructor (private readonly pool: Pool, options: ReportOptions, private readonly log: Log, private readonly maxConcurrent = 2) {
    this.options = {
      ...options,
      onSweepFailure: (sessionId, err) => log.warn({ err, sessionId }, 'Session report not computed; retried on a later pass.')
    }
  }

  /** The ended sessions with their report summary, computing the missing ones one after another. */
  async withSummaries (ended: EndedSession[]): Promise<EndedSession[]> {
    const result: EndedSession[] = []
    for (const session of ended) {
      result.push(session.report ? session : { ...session, report: await this.summaryOf(session.id) })
    }
    return result
  }

  async withSummary (ended: EndedSession): Promise<EndedSession> {
    const [withReport] = await this.withSummaries([ended])
    return withReport as EndedSession
  }

  /** The full report, computed first if needed (or again, with recompute). */
  async report (sessionId: number, recompute = false): Promise<EnsureReportResult> {
    return this.limited(() => ensureSessionReport(this.pool, sessionId, { ...this.options, recompute }))
  }

  /** Computes up to `limit` reports nobody computed yet (ended while no phone was connected, or after a failure). */
  async sweep (limit: number): Promise<number[]> {
    return this.limited(() => computePendingReports(this.pool, limit, this.options))
  }

  private async limited<T> (work: () => Promise<T>): Promise<T> {
    if (this.running >= this.maxConcurrent) await new Promise<void>(resolve => this.queue.push(resolve))
    else this.running++
    try {
      return await work()
    } finally {
      // The slot passes straight to the next waiter, if any.
      const next = this.queue.shift()
      if (next) next()
      else this.running--
    }
  }

  private async summaryOf (sessionId: number): Promise<ReportSummary | null> {
    try {
      const result = await this.report(sessionId)
      return result.status === 'ready' ? result.report.summary : null
    } catch (err) {
      this.log.warn({ err, sessionId }, 'Session report not computed; the reaper will retry.')
      return null
    }
  }
}
