import type { Log } from '../logger.js'
import type { SessionReporter } from '../reports/session-reporter.js'
import type { RecordingSessions } from './recording-sessions.js'

/** Reports of sessions nobody here holds, computed per pass: the sweep must not delay the next pass for long. */
const REPORTS_PER_PASS = 5

export interface SessionReaperOptions {
  sessions: RecordingSessions
  reporter: SessionReporter
  intervalMs: number
  log: Log
}

/**
 * Every interval: end every expired session and tell the phones held here
 * of every session that ended by any means (RecordingSessions.reap); last,
 * compute a few reports nobody computed yet. Polling instead of
 * LISTEN/NOTIFY: nothing is lost while the database is unreachable, and no
 * connection is pinned for it.
 */
export function startSessionReaper ({ sessions, reporter, intervalMs, log }: SessionReaperOptions): { stop: () => Promise<void> } {
  let running: Promise<void> | undefined
  let sweeping: Promise<void> | undefined
  let stopped = false

  // The sweep waits behind every more urgent report; awaited in the pass, it would hold
  // back the next pass (ending expired sessions, telling phones) while reports run.
  function sweepInBackground (): void {
    sweeping ??= reporter.sweep(REPORTS_PER_PASS).then(() => {}, (err: unknown) => {
      log.warn({ err }, 'Report sweep failed; retrying next interval.')
    }).finally(() => { sweeping = undefined })
  }

  async function tick (): Promise<void> {
    try {
      const expired = await sessions.reap(() => stopped)
      if (expired > 0) log.debug({ expired }, 'Expired sessions ended.')
      if (!stopped) sweepInBackground()
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
      await sweeping
    }
  }
}
