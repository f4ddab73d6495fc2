import { bearerToken, sameSecret } from '../credentials.js'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { unauthorized } from '../errors.js'
import { errorResponse } from '../schemas/common.js'

export interface MetricsRoutesOptions {
  /** When set, scrapers must send `Authorization: Bearer <token>`. */
  token?: string
}

const metricsRoutes: FastifyPluginAsyncZod<MetricsRoutesOptions> = async (fastify, options) => {
  const token = options.token
  fastify.get('/metrics', {
    schema: {
      tags: ['operations'],
      summary: 'Prometheus metrics (text exposition format)',
      description: token === undefined
        ? 'Open: METRICS_TOKEN is not set on this instance.'
        : 'Requires `Authorization: Bearer <METRICS_TOKEN>`.',
      security: token === undefined ? [] : [{ metricsToken: [] }],
      response: {
        200: { description: 'Prometheus text exposition format 0.0.4', content: { 'text/plain': { schema: z.string() } } },
        401: errorResponse
      }
    },
    onRequest: async (request) => {
      if (token === undefined) return
      const presented = bearerToken(request.headers.authorization)
      if (!presented || !sameSecret(presented, token)) throw unauthorized('A valid metrics token is required')
    }
  }, async (_request, reply) => {
    const registry = fastify.metrics.registry
    const text = await registry.metrics()
    return reply.type(registry.contentType).send(text)
  })
}

export default metricsRoutes
