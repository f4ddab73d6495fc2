import { createServer, type RequestListener, type Server } from 'node:http'

/** Fastify's default for its own server, kept: phones reuse connections between requests. */
const KEEP_ALIVE_TIMEOUT_MS = 72_000

/**
 * Fastify's serverFactory: a plain HTTP server that closes a connection whose
 * request (headers and body) is not fully received within `requestTimeoutMs`,
 * answering 408. Node checks these deadlines only every
 * connectionsCheckingInterval (30 s by default), so a trickled request would
 * otherwise live up to 30 s past its deadline; Fastify has no option for the
 * interval, hence the factory. The deadline covers receiving a request only:
 * a response streamed for longer, or a WebSocket after its upgrade, is not cut.
 */
export function httpServerFactory (requestTimeoutMs: number) {
  return (handler: RequestListener): Server => {
    const server = createServer({
      requestTimeout: requestTimeoutMs,
      headersTimeout: requestTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.round(requestTimeoutMs / 10)))
    }, handler)
    server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS
    return server
  }
}
