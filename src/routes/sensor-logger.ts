import type { FastifyReply, FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { findUserByIngestKey, type IngestKeyOwner } from '../db/ingest-keys-repository.js'
import { unauthorized } from '../errors.js'
import type { PushObserver } from '../recording/push-observer.js'
import type { PushResult } from '../recording/push-recorder.js'
import { errorResponse } from '../schemas/common.js'
import { pushAccepted, pushInvalid } from '../schemas/sensor-logger.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Who a push with an ingest key in its URL records for (set by the key check). */
    ingestKeyOwner: IngestKeyOwner | null
  }
}

export interface SensorLoggerRoutesOptions {
  observer?: PushObserver
}

/** A message per batch period: a minute of every sensor at 100 Hz with location is about 2 MiB of JSON. */
export const PUSH_BODY_LIMIT = 4 * 1024 * 1024

/** Seconds a client should wait: a moment when its own messages crowd it, longer when storage is down. */
const RETRY_AFTER = { inFlight: 1, saturated: 2, storage: 5 }

const BAD_KEY = 'The ingest key is invalid or has been revoked'

const responses = {
  200: pushAccepted,
  400: pushInvalid,
  401: errorResponse,
  403: errorResponse,
  409: errorResponse,
  413: errorResponse,
  429: errorResponse,
  503: errorResponse
}

function refuse (reply: FastifyReply, statusCode: number, error: string, message: string, retryAfterSeconds?: number) {
  if (retryAfterSeconds !== undefined) reply.header('retry-after', String(retryAfterSeconds))
  return reply.code(statusCode).send({ error, message })
}

/** The HTTP answer to each of the recorder's results. */
function answer (reply: FastifyReply, result: PushResult) {
  switch (result.status) {
    case 'written':
    case 'duplicate': {
      const { status, sessionId, batchId, written, skipped, totalSensorReadingsWritten } = result
      return reply.code(200).send({ status, sessionId, batchId, written, skipped, totalSensorReadingsWritten })
    }
    case 'nothing_to_record':
      return reply.code(200).send({ status: result.status, sessionId: result.sessionId, batchId: result.batchId, written: 0, skipped: result.skipped })
    case 'test':
      return reply.code(200).send({ status: 'test', test: true, written: 0 })
    case 'invalid':
      return reply.code(400).send({ error: 'INVALID_PUSH', message: 'The message cannot be recorded as sent; see issues', issues: result.issues })
    case 'too_many_readings':
      return refuse(reply, 413, 'TOO_MANY_READINGS',
        `The message carries ${result.received} motion readings, more than the ${result.limit} one message may carry; shorten the batch period`)
    case 'stale_app_session':
      return refuse(reply, 409, 'STALE_APP_SESSION', 'This message belongs to a recording that has since ended; it was not stored')
    case 'other_recording_active':
      return refuse(reply, 409, 'RECORDING_ELSEWHERE', 'You are recording another session (over the WebSocket); end it first')
    case 'too_many_in_flight':
      return refuse(reply, 429, 'TOO_MANY_IN_FLIGHT', `At most ${result.limit} of your messages are handled at once; send again shortly`, RETRY_AFTER.inFlight)
    case 'storage_unavailable':
      return refuse(reply, 503, 'STORAGE_UNAVAILABLE', `Not stored: ${result.message}`, RETRY_AFTER.storage)
    case 'saturated':
      return refuse(reply, 503, 'INGEST_SATURATED', 'The service is writing as much as it can hold; send again shortly', RETRY_AFTER.saturated)
    case 'user_gone':
      return refuse(reply, 401, 'UNAUTHORIZED', BAD_KEY)
  }
}

/**
 * Sensor Logger's HTTP push: `POST /ingest/sensor-logger/:ingestKey` (the
 * URL a tester pastes into the app) and `POST /ingest/sensor-logger` with a
 * Bearer access token. A thin adapter over `fastify.recording.push`
 * (docs/sensor-logger.md). Encapsulated: its body parser serves only these
 * routes.
 */
const sensorLoggerRoutes: FastifyPluginAsyncZod<SensorLoggerRoutesOptions> = async (fastify, options) => {
  const { push } = fastify.recording
  const observe = (outcome: Parameters<NonNullable<PushObserver['messageHandled']>>[1]) => options.observer?.messageHandled?.('http', outcome)
  const betaTestersOnly = fastify.requireRole('BETATESTER')

  // The body reaches the recorder as text, whatever the Content-Type (the app's varies) or none:
  // JSON.parse would round nanosecond times, which have more digits than a double holds.
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser('*', { parseAs: 'string', bodyLimit: PUSH_BODY_LIMIT }, (_request, body, done) => done(null, body))
  fastify.decorateRequest('ingestKeyOwner', null)

  // Before the body is read: a stranger's upload is refused unread.
  async function checkIngestKey (request: FastifyRequest<{ Params: { ingestKey: string } }>) {
    const owner = await findUserByIngestKey(fastify.db, request.params.ingestKey)
    if (!owner) {
      observe('unauthorized')
      throw unauthorized(BAD_KEY)
    }
    request.ingestKeyOwner = owner
  }

  async function checkToken (request: FastifyRequest) {
    try {
      await betaTestersOnly(request)
    } catch (err) {
      observe('unauthorized')
      throw err
    }
  }

  async function receive (request: FastifyRequest, reply: FastifyReply, userId: number) {
    const body = typeof request.body === 'string' ? request.body : ''
    const result = await push.receive(userId, body, 'http')
    observe(result.status)
    request.log.debug({ outcome: result.status, sessionId: 'sessionId' in result ? result.sessionId : undefined }, 'Push message handled.')
    return answer(reply, result)
  }

  fastify.post('/ingest/sensor-logger/:ingestKey', {
    onRequest: checkIngestKey,
    bodyLimit: PUSH_BODY_LIMIT,
    schema: {
      tags: ['ingest keys'],
      summary: 'Sensor Logger HTTP push with an ingest key in the URL (docs/sensor-logger.md)',
      security: [],
      params: z.object({ ingestKey: z.string() }),
      response: responses
    }
  }, async (request, reply) => receive(request, reply, (request.ingestKeyOwner as IngestKeyOwner).userId))

  fastify.post('/ingest/sensor-logger', {
    onRequest: checkToken,
    bodyLimit: PUSH_BODY_LIMIT,
    schema: {
      tags: ['ingest keys'],
      summary: 'Sensor Logger HTTP push with a Bearer access token (docs/sensor-logger.md)',
      response: responses
    }
  }, async (request, reply) => receive(request, reply, request.auth!.userId))
}

export default sensorLoggerRoutes
