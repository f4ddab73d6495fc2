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

  /**
   * The report's summary, or null when it fails or is not ready within the
   * report timeout, waiting for a free slot included: whoever waits on it (a
   * phone for session_destroyed) is answered in bounded time. A computation
   * still running then finishes and stores the report; the reaper computes
   * any that failed.
   */
  async summaryOf (sessionId: number, recompute = false): Promise<ReportSummary | null> {
    const computation = this.report(sessionId, recompute).then(
      result => result.status === 'ready' ? result.report.summary : null,
      (err: unknown) => {
        this.log.warn({ err, sessionId }, 'Session report not computed; the reaper will retry.')
        return null
      })
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<null>(resolve => { timer = setTimeout(() => resolve(null), this.options.timeoutMs) })
    try {
      return await Promise.race([computation, deadline])
    } finally {
      clearTimeout(timer)
    }
  }
}
