import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { verifyAccessToken, type TokenOwner } from '../db/access-tokens-repository.js'
import { forbidden, unauthorized } from '../errors.js'
import type { Role } from '../schemas/users.js'
import { bearerToken } from '../credentials.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook: resolves the bearer token into request.auth or answers 401. */
    authenticate: (request: FastifyRequest) => Promise<void>
    /** onRequest hook factory: authenticate, then 403 unless the caller has one of the roles. */
    requireRole: (...roles: Role[]) => (request: FastifyRequest) => Promise<void>
  }
  interface FastifyRequest {
    auth: TokenOwner | null
  }
}

/**
 * The token from `Authorization: Bearer`, or from `?access_token=` on the
 * WebSocket route only: phone WebSocket APIs often cannot set headers, while
 * a token in an ordinary URL would end up in proxies' access logs.
 */
function presentedToken (request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (header) return bearerToken(header)
  if (request.routeOptions.config?.acceptsQueryToken) {
    const value = (request.query as Record<string, unknown> | undefined)?.access_token
    return typeof value === 'string' ? value : undefined
  }
  return undefined
}

declare module 'fastify' {
  interface FastifyContextConfig {
    acceptsQueryToken?: boolean
  }
}

async function authPlugin (fastify: FastifyInstance) {
  fastify.decorateRequest('auth', null)

  async function authenticate (request: FastifyRequest) {
    const token = presentedToken(request)
    if (!token) throw unauthorized()
    const owner = await verifyAccessToken(fastify.db, token)
    if (!owner) throw unauthorized('The access token is invalid or has expired')
    request.auth = owner
  }

  fastify.decorate('authenticate', authenticate)
  fastify.decorate('requireRole', (...roles: Role[]) => async (request: FastifyRequest) => {
    await authenticate(request)
    if (!roles.includes((request.auth as TokenOwner).role)) throw forbidden()
  })
}

export default fp(authPlugin, { name: 'auth', dependencies: ['db'] })
