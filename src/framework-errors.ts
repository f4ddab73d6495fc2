import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'

/** An answer in the service's error shape, `{ error, message }`, with its status. */
export interface ErrorAnswer {
  statusCode: number
  error: string
  message: string
}

/**
 * Stable codes for the errors Fastify raises itself (bad URL, body parsing),
 * so clients never see Fastify's own codes or body shape. The messages of
 * the URL errors are replaced, since Fastify's repeat the URL, query included.
 */
const FRAMEWORK_ERRORS: Record<string, { error: string, message?: string }> = {
  FST_ERR_BAD_URL: { error: 'BAD_URL', message: 'The URL path is not valid: it contains a malformed percent-encoding' },
  FST_ERR_MAX_PARAM_LENGTH: { error: 'URL_TOO_LONG', message: 'A segment of the URL path is too long' },
  FST_ERR_CTP_INVALID_JSON_BODY: { error: 'INVALID_JSON' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { error: 'INVALID_JSON' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { error: 'UNSUPPORTED_MEDIA_TYPE', message: 'This route does not accept this Content-Type' },
  FST_ERR_CTP_BODY_TOO_LARGE: { error: 'PAYLOAD_TOO_LARGE' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { error: 'BAD_REQUEST', message: 'The Content-Length does not match the body' },
  FST_ERR_CTP_EMPTY_TYPE: { error: 'BAD_REQUEST', message: 'The Content-Type header is empty' },
  FST_ERR_CTP_INVALID_TYPE: { error: 'BAD_REQUEST', message: 'The Content-Type header is not valid' }
}

/** The service's answer to an error Fastify raised, or undefined when the error is not Fastify's. */
export function frameworkErrorAnswer (err: { code?: string, statusCode?: number, message: string }): ErrorAnswer | undefined {
  if (!err.code?.startsWith('FST_')) return undefined
  const known = FRAMEWORK_ERRORS[err.code]
  const statusCode = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500
  if (statusCode >= 500) return { statusCode, error: 'INTERNAL_ERROR', message: 'Internal Server Error' }
  return { statusCode, error: known?.error ?? 'BAD_REQUEST', message: known?.message ?? err.message }
}

/**
 * Fastify's `frameworkErrors` option: errors raised before routing (a path
 * with a malformed percent-encoding, an over-long path parameter), which
 * never reach the error handler.
 */
export function frameworkErrors (err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const answer = frameworkErrorAnswer(err) ?? { statusCode: 500, error: 'INTERNAL_ERROR', message: 'Internal Server Error' }
  // Only the code: Fastify's messages here repeat the URL.
  if (answer.statusCode >= 500) request.log.error({ code: err.code }, 'Routing failed.')
  reply.code(answer.statusCode).send({ error: answer.error, message: answer.message })
}

const CLIENT_ERRORS: Record<string, ErrorAnswer> = {
  ERR_HTTP_REQUEST_TIMEOUT: { statusCode: 408, error: 'REQUEST_TIMEOUT', message: 'The request was not received in time' },
  HPE_HEADER_OVERFLOW: { statusCode: 431, error: 'HEADERS_TOO_LARGE', message: 'The request headers are too large' }
}
const MALFORMED_REQUEST: ErrorAnswer = { statusCode: 400, error: 'BAD_REQUEST', message: 'The request is not valid HTTP' }

/**
 * Fastify's `clientErrorHandler` option: Node's errors for a connection
 * whose request could not be parsed or was not received in time. Answers in
 * the service's shape and closes the connection.
 */
export function clientErrorHandler (this: FastifyInstance, err: NodeJS.ErrnoException, socket: Duplex) {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const answer = (err.code && CLIENT_ERRORS[err.code]) || MALFORMED_REQUEST
  // Not the error itself: Node attaches the raw bytes received (rawPacket), headers and tokens included.
  this.log.debug({ code: err.code, statusCode: answer.statusCode }, 'Client error.')
  if (socket.writable) {
    const body = JSON.stringify({ error: answer.error, message: answer.message })
    socket.write(`HTTP/1.1 ${answer.statusCode} ${STATUS_CODES[answer.statusCode]}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
  }
  socket.destroy()
}
