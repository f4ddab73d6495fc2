import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { databaseAnswers } from '../db/errors.js'
import { describeDatabaseError } from '../db/describe-error.js'
import { currentValue } from '../metrics.js'
import { withTimeout } from '../timeout.js'
import { SERVICE_VERSION } from '../version.js'

export interface HealthRoutesOptions {
  commitSha: string
  startedAt: Date
  batchSize: number
  sessionTtlSeconds: number
  /** How long the database round trip of /health may take before it reports 503. */
  dbCheckTimeoutMs: number
}

const healthRoutes: FastifyPluginAsyncZod<HealthRoutesOptions> = async (fastify, options) => {
  fastify.get('/health', {
    schema: {
      tags: ['operations'],
      summary: 'Liveness and database readiness',
      description: '200 when the process runs and the database answers `select 1` in time; 503 with a short reason otherwise.',
      security: [],
      response: {
        200: z.object({ status: z.literal('ok'), database: z.literal('ok') }),
        503: z.object({ status: z.literal('unavailable'), database: z.string().describe('why, e.g. "connection refused" or "no answer within 2000 ms"') })
      }
    }
  }, async (request, reply) => {
    try {
      await withTimeout(databaseAnswers(fastify.db), options.dbCheckTimeoutMs, 'health check')
      return { status: 'ok' as const, database: 'ok' as const }
    } catch (err) {
      request.log.warn({ err }, 'Health check: the database is unavailable.')
      return reply.code(503).send({ status: 'unavailable' as const, database: describeDatabaseError(err) })
    }
  })

  fastify.get('/status', {
    schema: {
      tags: ['operations'],
      summary: 'Version, commit, uptime, storage, sessions and sockets',
      security: [],
      response: {
        200: z.object({
          service: z.literal('motion-ingest'),
          version: z.string(),
          commit: z.string(),
          startedAt: z.string(),
          uptimeSeconds: z.number(),
          storage: z.object({
            kind: z.enum(['timescaledb', 'postgresql']),
            postgresVersion: z.string(),
            timescaledbVersion: z.string().nullable(),
            readingsHypertable: z.boolean(),
            embedded: z.boolean()
          }),
          sensorReadingsBatchSize: z.number(),
          sessionTtlSeconds: z.number(),
          activeSessions: z.number().int().nullable().describe('sessions not yet destroyed, across all instances; null when the database does not answer'),
          openSockets: z.number().int().describe('recording WebSockets open on this instance')
        })
      }
    }
  }, async () => ({
    service: 'motion-ingest' as const,
    version: SERVICE_VERSION,
    commit: options.commitSha,
    startedAt: options.startedAt.toISOString(),
    uptimeSeconds: Math.round((Date.now() - options.startedAt.getTime()) / 1000),
    storage: fastify.storage,
    sensorReadingsBatchSize: options.batchSize,
    sessionTtlSeconds: options.sessionTtlSeconds,
    activeSessions: await fastify.activeSessionCount(),
    openSockets: await currentValue(fastify.metrics.openSockets)
  }))
}

export default healthRoutes
