import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { reportOptions, type ReportObserver } from '../reports/report-store.js'
import { SessionReporter } from '../reports/session-reporter.js'

declare module 'fastify' {
  interface FastifyInstance {
    reports: SessionReporter
  }
}

export interface ReportsPluginOptions {
  timeoutMs: number
  observer?: ReportObserver
}

async function reportsPlugin (fastify: FastifyInstance, options: ReportsPluginOptions) {
  const reporter = new SessionReporter(fastify.db, reportOptions(fastify.storage, options.timeoutMs, options.observer), fastify.log.child({ component: 'reports' }))
  fastify.decorate('reports', reporter)
}

export default fp(reportsPlugin, { name: 'reports', dependencies: ['db'] })
