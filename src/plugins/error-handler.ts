import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance } from 'fastify'
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod'
import { isDatabaseUnavailable } from '../db/errors.js'
import { AppError } from '../errors.js'
import { frameworkErrorAnswer } from '../framework-errors.js'

const REASONS: Record<number, string> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  408: 'REQUEST_TIMEOUT',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  414: 'URL_TOO_LONG',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'RATE_LIMITED',
  431: 'HEADERS_TOO_LARGE',
  503: 'SERVICE_UNAVAILABLE'
}

/**
 * One error shape for every route: `{ error, message }` with a stable code,
 * no internals on 5xx. Log lines carry the request under `req`, so the
 * logger's serializer writes its route pattern, never the URL as sent.
 */
async function errorHandlerPlugin (fastify: FastifyInstance) {
  fastify.setErrorHandler((err: FastifyError | AppError, request, reply) => {
    if (hasZodFastifySchemaValidationErrors(err)) {
      const details = err.validation.map(issue => {
        const where = issue.instancePath.replace(/^\//, '').replaceAll('/', '.')
        return `${err.validationContext ?? 'request'}${where ? '.' + where : ''}: ${issue.message}`
      })
      return reply.code(400).send({ error: 'VALIDATION_FAILED', message: details.join('; ') })
    }
    // The database being unreachable is not a bug of the server: 503 tells clients
    // (and phones upgrading /ws, whose auth needs the database) to retry later.
    if (!err.statusCode && isDatabaseUnavailable(err)) {
      request.log.warn({ err, req: request }, 'Database unavailable.')
      return reply.code(503).send({ error: 'DATABASE_UNAVAILABLE', message: 'The database is unavailable; retry shortly' })
    }
    const framework = frameworkErrorAnswer(err)
    if (framework && framework.statusCode < 500) {
      return reply.code(framework.statusCode).send({ error: framework.error, message: framework.message })
    }
    const statusCode = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500
    if (statusCode >= 500) {
      // The service's own 503s (busy, a report too slow) are expected under load: their code and message say it all.
      if (err instanceof AppError && statusCode === 503) {
        request.log.info({ code: err.code, req: request }, 'Request refused: service busy.')
        return reply.code(503).send({ error: err.code, message: err.message })
      }
      request.log.error({ err, req: request }, 'Request failed.')
      return reply.code(statusCode).send({ error: REASONS[statusCode] ?? 'INTERNAL_ERROR', message: statusCode === 503 ? err.message : 'Internal Server Error' })
    }
    const code = err instanceof AppError ? err.code : REASONS[statusCode] ?? 'BAD_REQUEST'
    return reply.code(statusCode).send({ error: code, message: err.message })
  })

  fastify.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: 'NOT_FOUND', message: `Route ${request.method} ${request.url.split('?')[0]} not found` })
  })
}

export default fp(errorHandlerPlugin, { name: 'error-handler' })
