import pino from 'pino'
import type { Bindings, LogFn, Logger, LoggerOptions } from 'pino'

/** Paths whose values never reach a log line: credentials in headers, bodies and query strings. */
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

const SECRET_QUERY_PARAMS = /([?&](?:access_token|token)=)[^&#]*/gi
// With public-key login the public key is a password: GET /users/by-public-key/:publicKey carries it in the path.
const SECRET_PATH_SEGMENTS = /(\/by-public-key\/)[^/?#]*/gi

/** Removes tokens passed as query parameters (phones may use ?access_token=) and public keys in paths from a URL. */
export function redactUrl (url: string): string {
  return url.replace(SECRET_QUERY_PARAMS, '$1[Redacted]').replace(SECRET_PATH_SEGMENTS, '$1[Redacted]')
}

export function loggerOptions (level: string): LoggerOptions {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
    serializers: {
      req: (request: { method: string, url: string, ip?: string, id?: string }) =>
        ({ method: request.method, url: redactUrl(request.url), remoteAddress: request.ip, id: request.id })
    },
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
