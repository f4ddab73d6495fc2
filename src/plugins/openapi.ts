import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import swagger, { type FastifyDynamicSwaggerOptions } from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod'
import { wsPathItem, wsProtocolMarkdown, type WsProtocolFacts } from '../openapi/ws-protocol.js'
import { SERVICE_VERSION } from '../version.js'

export interface OpenapiPluginOptions {
  ws: WsProtocolFacts
}

// Routes under these prefixes need no access token; every other route inherits the document's bearer requirement.
const PUBLIC_PREFIXES = ['/auth/']

type TransformInput = Parameters<typeof jsonSchemaTransform>[0]

/**
 * jsonSchemaTransform plus two rules: public routes drop the global bearer
 * requirement, and the WebSocket route is hidden because `paths['/ws']`
 * already documents it (a plain GET operation would replace that entry).
 */
function transform (input: TransformInput) {
  const result = jsonSchemaTransform(input)
  if ((input.route as { websocket?: boolean }).websocket) return { schema: { hide: true }, url: result.url }
  const schema = result.schema as Record<string, unknown> | undefined
  if (schema && schema.security === undefined && PUBLIC_PREFIXES.some(prefix => result.url.startsWith(prefix))) {
    return { schema: { ...schema, security: [] }, url: result.url }
  }
  return result
}

async function openapiPlugin (fastify: FastifyInstance, options: OpenapiPluginOptions) {
  const document: FastifyDynamicSwaggerOptions['openapi'] = {
    openapi: '3.1.0',
    info: {
      title: 'motion-ingest',
      version: SERVICE_VERSION,
      description: [
        'Ingest service for phone motion-sensor recordings. Phones record over a WebSocket; people and tools read over HTTP.',
        'Log in with `POST /auth/login`, then send `Authorization: Bearer <accessToken>`. Errors are JSON `{"error", "message"}`.',
        wsProtocolMarkdown(options.ws)
      ].join('\n\n')
    },
    tags: [
      { name: 'auth', description: 'Obtain an access token' },
      { name: 'users', description: 'Users (admins)' },
      { name: 'sessions', description: 'Recording sessions and their readings' },
      { name: 'websocket', description: 'Recording protocol' },
      { name: 'operations', description: 'Health, status and metrics' }
    ],
    components: {
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', description: 'An access token from /auth/login or /auth/verify' },
        accessTokenQuery: { type: 'apiKey', in: 'query', name: 'access_token', description: 'The access token as a query parameter (GET /ws only)' },
        metricsToken: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN, when the operator set one' }
      }
    },
    security: [{ bearerAuth: [] }],
    // Built per app: @fastify/swagger adds the routes to this very object.
    paths: { '/ws': wsPathItem() }
  }
  await fastify.register(swagger, { openapi: document, transform, transformObject: jsonSchemaTransformObject })
  await fastify.register(swaggerUi, { routePrefix: '/docs' })
}

export default fp(openapiPlugin, { name: 'openapi' })
