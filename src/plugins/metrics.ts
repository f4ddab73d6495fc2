import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { countActiveSessions } from '../db/sessions/sessions-repository.js'
import { createMetrics, type Metrics } from '../metrics.js'
import { withTimeout } from '../timeout.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Prometheus metrics of this app instance; the ingest path increments them. */
    metrics: Metrics
    /** Active sessions in the database, or null when it does not answer within the check timeout. */
    activeSessionCount: () => Promise<number | null>
  }
}

export interface MetricsPluginOptions {
  /** How long a database count may take before it reports null instead. */
  dbCheckTimeoutMs: number
}

async function metricsPlugin (fastify: FastifyInstance, options: MetricsPluginOptions) {
  if (!(options.dbCheckTimeoutMs > 0)) throw new Error('metrics plugin: dbCheckTimeoutMs must be a positive number')
  const log = fastify.log.child({ component: 'metrics' })

  // A scrape or /status must not fail or hang because the database does.
  async function activeSessionCount (): Promise<number | null> {
    try {
      return await withTimeout(countActiveSessions(fastify.db), options.dbCheckTimeoutMs, 'count of active sessions')
    } catch (err) {
      log.warn({ err }, 'Could not count active sessions.')
      return null
    }
  }

  fastify.decorate('activeSessionCount', activeSessionCount)
  fastify.decorate('metrics', createMetrics({ countActiveSessions: activeSessionCount }))
}

export default fp(metricsPlugin, { name: 'metrics', dependencies: ['db'] })
