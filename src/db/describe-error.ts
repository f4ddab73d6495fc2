import { TimeoutError } from '../timeout.js'

const NETWORK_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection reset',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found'
}

const SERVER_CODES: Record<string, string> = {
  '57P01': 'server is shutting down',
  '57P02': 'server crashed',
  '57P03': 'server is starting up',
  53300: 'too many connections',
  '3D000': 'database does not exist',
  '28P01': 'authentication failed',
  28000: 'authentication failed'
}

/**
 * A short reason a database call failed, fit for an unauthenticated endpoint:
 * it names the kind of failure but never a host, port or user, which pg's own
 * messages (`connect ECONNREFUSED 10.0.0.5:5432`) would reveal.
 */
export function describeDatabaseError (err: unknown): string {
  if (err instanceof TimeoutError) return `no answer within ${err.timeoutMs} ms`
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string') {
    const known = NETWORK_CODES[code] ?? SERVER_CODES[code]
    if (known) return known
    return `database error ${code}`
  }
  return 'database unreachable'
}
