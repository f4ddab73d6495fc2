import type { FastifyReply } from 'fastify'

// Long enough for a running export to make way, short enough that a script's retry is not idle for long.
const RETRY_AFTER_SECONDS = 5

/** A download refused for now (the user's export slots, or the export pool): retry after a few seconds. */
export function refuseExport (reply: FastifyReply, statusCode: 429 | 503, error: string, message: string) {
  return reply.code(statusCode).header('retry-after', String(RETRY_AFTER_SECONDS)).send({ error, message })
}
