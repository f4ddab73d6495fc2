import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'

/**
 * The few response headers that matter for a JSON API and its docs page,
 * without a CSP that the Swagger UI would need exceptions from. The web
 * page at /app/ adds its own strict policy (plugins/web.ts).
 */
async function securityHeadersPlugin (fastify: FastifyInstance) {
  fastify.addHook('onSend', async (_request, reply) => {
    reply.header('x-content-type-options', 'nosniff')
    reply.header('x-frame-options', 'DENY')
    reply.header('referrer-policy', 'no-referrer')
  })
}

export default fp(securityHeadersPlugin, { name: 'security-headers' })
