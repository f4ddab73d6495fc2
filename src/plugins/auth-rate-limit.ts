import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { AppError } from '../errors.js'

export interface AuthRateLimitOptions {
  /** Requests per minute per client IP, counted across all /auth/* routes together. */
  perMinute: number
}

const isAuthRoute = (request: FastifyRequest) => request.routeOptions.url?.startsWith('/auth/') ?? false

/**
 * Slows down guessing of credentials on /auth/*. Registered before the routes
 * and keyed on the route pattern, not on a plugin scope, so an /auth/ route
 * added anywhere later is limited too. The counters live in this process: with
 * several instances a client gets perMinute per instance.
 */
async function authRateLimitPlugin (fastify: FastifyInstance, options: AuthRateLimitOptions) {
  if (!Number.isInteger(options.perMinute) || options.perMinute < 1) {
    throw new Error('auth-rate-limit plugin: perMinute must be a positive integer')
  }
  await fastify.register(rateLimit, {
    global: true,
    max: options.perMinute,
    timeWindow: 60_000,
    allowList: request => !isAuthRoute(request),
    // The key is built before the allow list is asked, for every request; a client that left
    // before its request was handled (a load balancer's timed-out health check) has no ip.
    keyGenerator: request => request.ip ?? 'unknown',
    errorResponseBuilder: (_request, context) =>
      new AppError(429, 'RATE_LIMITED', `Too many authentication attempts; retry in ${context.after}`)
  })
}

export default fp(authRateLimitPlugin, { name: 'auth-rate-limit' })
