import type { Pool } from '../db/pool.js'
import type { EndedSession } from '../db/sessions/session-lifecycle.js'
import { computePendingReports, ensureSessionReport, type EnsureReportResult, type ReportOptions } from './report-store.js'
import type { Log } from '../logger.js'
import { PriorityLimit } from '../priority-limit.js'
import type { ReportSummary } from '../schemas/session-report.js'
import { withTimeout } from '../timeout.js'

/**
 * Why a report waits for a slot, most urgent first: a session that just
 * ended (a phone waits for session_destroyed, an admin for the answer), a
 * report someone asked for, the reaper's sweep of pending reports, and a
 * report computed again after its intended rate changed.
 */
export const REPORT_URGENCY = ['ended', 'request', 'sweep', 'recompute'] as const
export type ReportUrgency = typeof REPORT_URGENCY[number]

/** Recomputes of one user's sessions waiting or running at once; more are left to the reaper. */
export const RECOMPUTES_PER_USER = 2

/** Reports waiting for a slot beyond which a sweep or a recompute is not queued (the reaper computes it later). */
export const REPORT_QUEUE_LIMIT = 16

export type RecomputeResult =
  | { status: 'ready', summary: ReportSummary }
  /**
   * Not computed now: the user already has RECOMPUTES_PER_USER waiting or
   * running (`user-busy`), the queue is full (`busy`), or it did not finish
   * within the report timeout, or failed (`not-ready`). The report stays
   * pending, so the reaper's sweep computes it.
   */
  | { status: 'deferred', reason: 'user-busy' | 'busy' | 'not-ready' }

/**
 * Computes and serves completeness reports. Every path that ends a session
 * (the phone, expiry, an admin) asks for the report before it tells the
 * phone, so session_destroyed carries the summary; a report that cannot be
 * computed then is left to the reaper's sweep, and the phone hears
 * `report: null` rather than wait.
 */
export class SessionReporter {
  private readonly options: ReportOptions
  private readonly limit: PriorityLimit<ReportUrgency>

  /**
   * maxConcurrent: reports computed at once by this instance. They share the
   * pool with ingest, and many phones ending long sessions together must not
   * take every connection the writers need. One of the slots (when there are
   * two or more) is kept for sessions that just ended: however many other
   * reports are asked for, a phone's report waits for none of them.
   */
  constructor (private readonly pool: Pool, options: ReportOptions, private readonly log: Log, maxConcurrent = 2) {
    const others = { startsBelow: Math.max(1, maxConcurrent - 1) }
    const background = { ...others, maxWaiting: REPORT_QUEUE_LIMIT }
    this.limit = new PriorityLimit({
      maxRunning: maxConcurrent,
      urgency: REPORT_URGENCY,
      levels: { request: others, sweep: background, recompute: background },
      maxPerGroup: RECOMPUTES_PER_USER
    })
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

  /** The full report for someone who asked for it, computed first if needed (or again, with recompute). */
  async report (sessionId: number, recompute = false): Promise<EnsureReportResult> {
    return this.limit.run(() => this.ensure(sessionId, recompute), { level: 'request' })
  }

  /**
   * Computes up to `limit` reports nobody computed yet (ended while no phone
   * was connected, after a failure, or deferred). With the queue full it
   * computes none: they stay pending for a later pass.
   */
  async sweep (limit: number): Promise<number[]> {
    const admission = this.limit.schedule(() => computePendingReports(this.pool, limit, this.options), { level: 'sweep' })
    return admission.admitted ? await admission.result : []
  }

  /**
   * The summary of a session that just ended, or null when it fails or is
   * not ready within the report timeout, waiting for a free slot included:
   * whoever waits on it (a phone for session_destroyed) is answered in
   * bounded time. A computation still running then finishes and stores the
   * report; the reaper computes any that failed.
   */
  async summaryOf (sessionId: number, recompute = false): Promise<ReportSummary | null> {
    return this.summaryWithin(this.limit.run(() => this.ensure(sessionId, recompute), { level: 'ended' }), sessionId)
  }

  /**
   * Computes an ended session's report again after its intended rate
   * changed, on behalf of `userId`. The caller marks the report pending
   * first, so whatever is not computed here the reaper computes. A recompute
   * of the session that has not started yet serves this request too (it
   * reads the metadata when it starts); the user's recomputes are capped at
   * RECOMPUTES_PER_USER, and they come after every other report.
   */
  async recompute (sessionId: number, userId: number): Promise<RecomputeResult> {
    const admission = this.limit.schedule(() => this.ensure(sessionId, true), {
      level: 'recompute', key: `session:${sessionId}`, group: `user:${userId}`
    })
    if (!admission.admitted) {
      this.log.debug({ sessionId, userId, reason: admission.reason }, 'Report recompute deferred to the reaper.')
      return { status: 'deferred', reason: admission.reason === 'group-full' ? 'user-busy' : 'busy' }
    }
    const summary = await this.summaryWithin(admission.result, sessionId)
    return summary ? { status: 'ready', summary } : { status: 'deferred', reason: 'not-ready' }
  }

  private async ensure (sessionId: number, recompute: boolean): Promise<EnsureReportResult> {
    return ensureSessionReport(this.pool, sessionId, { ...this.options, recompute })
  }

  private async summaryWithin (computing: Promise<EnsureReportResult>, sessionId: number): Promise<ReportSummary | null> {
    try {
      const result = await withTimeout(computing, this.options.timeoutMs, `the report of session ${sessionId}`)
      return result.status === 'ready' ? result.report.summary : null
    } catch (err) {
      this.log.warn({ err, sessionId }, 'Session report not ready; the reaper will compute it if it failed.')
      return null
    }
  }
}
