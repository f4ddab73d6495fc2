import type { Queryable } from '../db/queryable.js'
import { endExpiredSessions, findGoneSessions } from '../db/session-lifecycle.js'
import type { Log } from '../logger.js'
import type { SessionReporter } from '../reports/session-reporter.js'
import type { SessionRegistry } from './session-registry.js'

const REAP_LIMIT = 1000
/** Reports of sessions nobody here holds, computed per pass: the sweep must not delay the next pass for long. */
const REPORTS_PER_PASS = 5

export interface SessionReaperOptions {
  db: Queryable
  registry: SessionRegistry
  reporter: SessionReporter
  intervalMs: number
  log: Log
  onExpired?: (count: number) => void
}

/**
 * Every interval: end every expired session in the database (whichever
 * instance holds it, or none), then ask which of the sessions held here have
 * ended by any means (expiry, an admin, another instance) and tell their
 * phones with the session's report, or were deleted with their user and
 * disconnect them; last, compute a few reports nobody computed yet. Polling instead of LISTEN/NOTIFY: nothing is lost while the
 * database is unreachable, and no connection is pinned for it.
 */
export function startSessionReaper ({ db, registry, reporter, intervalMs, log, onExpired }: SessionReaperOptions): { stop: () => Promise<void> } {
  let running: Promise<void> | undefined
  let stopped = false

  async function tick (): Promise<void> {
    try {
      // A backlog (say, after an outage) is ended a thousand at a time.
      for (let more = true; more;) {
        const expired = await endExpiredSessions(db, undefined, REAP_LIMIT)
        if (expired.length > 0) {
          onExpired?.(expired.length)
          log.debug({ sessions: expired.map(e => e.id) }, 'Expired sessions ended.')
        }
        more = expired.length === REAP_LIMIT && !stopped
      }
      const gone = await findGoneSessions(db, registry.sessionIds())
      // Phones connected here hear of their session's end with its report, each as soon as its
      // report is ready, so theirs come before the sweep.
      for (const ended of gone.ended) registry.notifyEnded(await reporter.withSummary(ended))
      for (const sessionId of gone.deleted) registry.notifyDeleted(sessionId)
      if (!stopped) await reporter.sweep(REPORTS_PER_PASS)
    } catch (err) {
      log.warn({ err }, 'Session reaper pass failed; retrying next interval.')
    }
  }

  const timer = setInterval(() => {
    running ??= tick().finally(() => { running = undefined })
  }, intervalMs)
  timer.unref()

  return {
    stop: async () => {
      stopped = true
      clearInterval(timer)
      await running
    }
  }
}
