import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { SERVICE_VERSION } from '../version.js'

export interface HealthRoutesOptions {
  commitSha: string
  startedAt: Date
  batchSize: number
  sessionTtlSeconds: number
}

const HEALTH_TIMEOUT_MS = 2000

async function databaseRoundTrip (query: () => Promise<unknown>): Promise<string | null> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<string>(resolve => { timer = setTimeout(() => resolve(`no answer within ${HEALTH_TIMEOUT_MS} ms`), HEALTH_TIMEOUT_MS) })
  try {
    return await Promise.race([query().then(() => null, (err: Error) => err.message || 'query failed'), timeout])
  } finally {
    clearTimeout(timer)
  }
}

const healthRoutes: FastifyPluginAsyncZod<HealthRoutesOptions> = async (fastify, options) => {
  fastify.get('/health', {
    schema: {
      tags: ['operations'],
      summary: 'Liveness and database readiness',
      response: {
        200: z.object({ status: z.literal('ok'), database: z.literal('ok') }),
        503: z.object({ status: z.literal('unavailable'), database: z.string() })
      }
    }
  }, async (_request, reply) => {
    const problem = await databaseRoundTrip(() => fastify.db.query('select 1'))
    if (problem) return reply.code(503).send({ status: 'unavailable' as const, database: problem })
    return { status: 'ok' as const, database: 'ok' as const }
  })

  fastify.get('/status', {
    schema: {
      tags: ['operations'],
      summary: 'Version, commit, uptime and storage',
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
          sessionTtlSeconds: z.number()
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
    sessionTtlSeconds: options.sessionTtlSeconds
  }))
}

export default healthRoutes
