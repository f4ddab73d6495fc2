import pino from 'pino'
import type { Bindings, LogFn, Logger, LoggerOptions } from 'pino'

/** Paths whose values never reach a log line: credentials in headers and logged objects. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["sec-websocket-protocol"]',
  'headers.authorization',
  'authorization',
  '*.authorization',
  'token',
  '*.token',
  'access_token',
  '*.access_token',
  'accessToken',
  '*.accessToken',
  'publicKey',
  '*.publicKey',
  'signature',
  '*.signature',
  'password',
  '*.password',
  'connectionString',
  '*.connectionString',
  'databaseUrl',
  '*.databaseUrl',
  'metricsToken',
  '*.metricsToken'
]

/** The parts of a Fastify request (or a raw Node request) a log line may describe. */
export interface LoggedRequest {
  method?: string
  url?: string
  ip?: string
  id?: string
  routeOptions?: { url?: string }
}

/**
 * What log lines say about a request's URL: the pattern of the route it
 * matched (`/users/by-public-key/:publicKey`), never the URL as sent. Query
 * strings and path parameters can carry tokens and keys, in any spelling
 * percent-encoding allows, so no pattern-matching redaction of them can be
 * complete. A request that matched no route keeps only its first path
 * segment: the rest may be the parameters of a route called with the wrong
 * method or a typo.
 */
export function loggedUrl (request: LoggedRequest): string {
  const route = request.routeOptions?.url
  if (route) return route
  const url = request.url ?? ''
  const first = /^\/[^/?#]*/.exec(url)?.[0]
  if (first === undefined) return '(not a path)'
  const rest = url.slice(first.length).split(/[?#]/, 1)[0] ?? ''
  return rest === '' || rest === '/' ? first + rest : `${first}/…`
}

/** The request as every log line carries it (Fastify logs it under `req`). */
export function loggedRequest (request: LoggedRequest) {
  return { method: request.method, url: loggedUrl(request), remoteAddress: request.ip, id: request.id }
}

export function loggerOptions (level: string): LoggerOptions {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
    serializers: { req: loggedRequest },
    // Pretty output only for a human at a terminal; pipes and containers get JSON.
    ...(process.stdout.isTTY ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l' } } } : {})
  }
}

export function createLogger (level: string): Logger {
  return pino(loggerOptions(level))
}

/**
 * The logger surface pure modules need. Both pino's Logger and Fastify's
 * request/instance loggers satisfy it.
 */
export interface Log {
  fatal: LogFn
  error: LogFn
  warn: LogFn
  info: LogFn
  debug: LogFn
  trace: LogFn
  child: (bindings: Bindings) => Log
}

const noop = () => {}
export const silentLog: Log = { fatal: noop, error: noop, warn: noop, info: noop, debug: noop, trace: noop, child: () => silentLog }
