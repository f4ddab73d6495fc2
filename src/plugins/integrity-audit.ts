import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { auditNewestEndedSessions, withAuditClient } from '../db/integrity-audit.js'
import { describeMismatch, findMismatches, type IntegrityMismatch } from '../reports/integrity-checks.js'

/** Sessions audited by one sample: a handful, so that a sample costs the database little. */
export const INTEGRITY_SAMPLE_SIZE = 20

/** Hooks for metrics. */
export interface IntegrityAuditObserver {
  /** A sample audited `sessions` sessions (at least one) and found `mismatches`. */
  sampled?: (result: { sessions: number, mismatches: number }) => void
}

/** What one sample audited and found. */
export interface IntegritySample {
  sessionIds: number[]
  mismatches: IntegrityMismatch[]
}

declare module 'fastify' {
  interface FastifyInstance {
    integrityAudit: {
      /**
       * Audits the newest ended sessions this instance has not audited yet;
       * joins the sample under way if there is one. Undefined when it failed
       * (logged). The timer calls it every interval.
       */
      run: () => Promise<IntegritySample | undefined>
    }
  }
}

export interface IntegrityAuditPluginOptions {
  /** Time between samples; 0 starts no timer (run() still works). */
  intervalMs: number
  /** Longest the sample's statement may run. */
  timeoutMs: number
  sampleSize?: number
  observer?: IntegrityAuditObserver
}

async function integrityAuditPlugin (fastify: FastifyInstance, options: IntegrityAuditPluginOptions) {
  if (!(options.intervalMs >= 0)) throw new Error('integrity audit plugin: intervalMs must be 0 (off) or a positive number')
  if (!(options.timeoutMs > 0)) throw new Error('integrity audit plugin: timeoutMs must be a positive number')
  const sampleSize = options.sampleSize ?? INTEGRITY_SAMPLE_SIZE
  const log = fastify.log.child({ component: 'integrity-audit' })
  // The highest session id audited: each sample takes the newest ended sessions above it, so
  // it audits what ended since the last one and skips the rest of a busy interval (a sample,
  // not a census: `motion-ingest verify` audits everything).
  let audited = 0
  let running: Promise<IntegritySample | undefined> | undefined

  async function sample (): Promise<IntegritySample | undefined> {
    try {
      // One statement on one connection, bounded by the server: the ingest pool lends one client briefly.
      const facts = await withAuditClient(fastify.db, options.timeoutMs, client => auditNewestEndedSessions(client, audited, sampleSize))
      const sessionIds = facts.map(f => f.sessionId)
      const mismatches = facts.flatMap(findMismatches)
      for (const mismatch of mismatches) {
        log.error({ sessionId: mismatch.sessionId, check: mismatch.check, values: mismatch.values }, `Integrity mismatch: ${describeMismatch(mismatch)}`)
      }
      // Nothing ended since the last sample: the gauge keeps what the last real sample found.
      if (sessionIds.length > 0) {
        audited = Math.max(audited, ...sessionIds)
        options.observer?.sampled?.({ sessions: sessionIds.length, mismatches: mismatches.length })
      }
      log.debug({ sessions: sessionIds.length, mismatches: mismatches.length }, 'Integrity sample audited.')
      return { sessionIds, mismatches }
    } catch (err) {
      log.warn({ err }, 'Integrity sample failed; trying again next interval.')
      return undefined
    }
  }

  const run = () => {
    running ??= sample().finally(() => { running = undefined })
    return running
  }
  fastify.decorate('integrityAudit', { run })

  const timer = options.intervalMs === 0
    ? undefined
    : setInterval(() => {
      // A sample still running (a slow database) is not joined by another; run() never rejects.
      if (!running) run()
    }, options.intervalMs)
  timer?.unref()
  // onClose hooks run last registered first: this one waits for a sample before the db plugin ends the pool.
  fastify.addHook('onClose', async () => {
    clearInterval(timer)
    await running
  })
}

export default fp(integrityAuditPlugin, { name: 'integrity-audit', dependencies: ['db'] })
