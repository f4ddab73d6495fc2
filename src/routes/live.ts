import { PassThrough } from 'node:stream'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { AppError } from '../errors.js'

export interface LiveRoutesOptions {
  /** A stream is ended after this long; the page reconnects, and its token is checked again. */
  maxStreamSeconds: number
  /** A comment line this often keeps proxies from closing a quiet stream and lets the page notice a dead one. */
  heartbeatMs: number
}

/** A reader that lets this much pile up unread is not reading; its stream is ended rather than held in memory. */
const MAX_UNSENT_BYTES = 1024 * 1024

/**
 * GET /live: Server-Sent Events of committed batches, across all instances
 * (LISTEN/NOTIFY). Read with fetch and a stream reader, so the token goes in
 * the Authorization header as everywhere else (EventSource cannot send one,
 * and a token in a URL ends up in logs). Hand-written: an SSE response is a
 * few header lines and `event:`/`data:` frames, and writing them here
 * is what lets the route bound memory per reader and end streams at shutdown.
 */
const liveRoutes: FastifyPluginAsyncZod<LiveRoutesOptions> = async (fastify, options) => {
  fastify.get('/live', {
    onRequest: fastify.authenticate,
    // A HEAD would open a stream only to close it.
    exposeHeadRoute: false,
    schema: {
      tags: ['live'],
      summary: 'Server-Sent Events: every batch committed of the sessions the caller may see, within a second (owner or admin)',
      description: 'text/event-stream. `event: hello` first; `event: batch` with `{sessionId, userId, batchId, counts: {batch, total}}` for each ' +
        'committed group of a session\'s batches (admins: every user\'s sessions; a beta tester: their own); `event: status` `{listening}` when the ' +
        'instance\'s notification connection went down or came back (notices in between are lost: reload counts); a `: ping` comment every 15 s. ' +
        'The stream ends after a while and on shutdown: reconnect. At most LIVE_MAX_STREAMS_PER_USER streams per user (429) and LIVE_MAX_STREAMS per instance (503).',
      // No response schema: the body is a stream, and errors use the shared error shape.
    }
  }, async (request, reply) => {
    const auth = request.auth as NonNullable<typeof request.auth>
    // Fastify sends the stream and destroys it when the reader goes away; the route only writes frames.
    const events = new PassThrough()
    const write = (text: string): boolean => {
      if (events.writableEnded || events.destroyed) return false
      events.write(text)
      if (events.writableLength > MAX_UNSENT_BYTES) {
        request.log.warn({ userId: auth.userId }, 'Live stream reader is not reading; ending its stream.')
        events.destroy()
        return false
      }
      return true
    }
    const end = () => { if (!events.writableEnded) events.end() }
    const joined = fastify.live.hub.join({
      userId: auth.userId,
      seesAll: auth.role === 'ADMIN',
      send: (event, data) => write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`),
      end
    })
    if (joined.status === 'user_limit') {
      reply.header('retry-after', '5')
      throw new AppError(429, 'TOO_MANY_STREAMS', `At most ${joined.limit} live streams per user; close another tab`)
    }
    if (joined.status === 'full') {
      reply.header('retry-after', '5')
      throw new AppError(503, 'LIVE_BUSY', 'This instance has as many live streams as it takes; retry shortly')
    }
    const heartbeat = setInterval(() => write(': ping\n\n'), options.heartbeatMs)
    const deadline = setTimeout(end, options.maxStreamSeconds * 1000)
    events.once('close', () => {
      clearInterval(heartbeat)
      clearTimeout(deadline)
      joined.leave()
    })
    write(`event: hello\ndata: ${JSON.stringify({ listening: fastify.live.channel.isListening, maxStreamSeconds: options.maxStreamSeconds })}\n\n`)
    return reply
      .type('text/event-stream; charset=utf-8')
      .header('cache-control', 'no-store')
      // Tells nginx-style proxies not to buffer the stream.
      .header('x-accel-buffering', 'no')
      .send(events)
  })
}

export default liveRoutes
