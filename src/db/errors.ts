const CONNECTION_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH'])

/**
 * True when an error means the database could not be reached or went away,
 * as opposed to a query it refused: the caller may retry the same request.
 */
export function isDatabaseUnavailable (err: unknown): boolean {
  const e = err as { code?: unknown, message?: unknown } | undefined
  const code = typeof e?.code === 'string' ? e.code : ''
  if (CONNECTION_ERROR_CODES.has(code)) return true
  // SQLSTATE class 08 (connection exception), 57P0x (server shutting down), 53 (insufficient resources)
  if (/^(08|57P0|53)/.test(code)) return true
  const message = typeof e?.message === 'string' ? e.message : ''
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable/i.test(message)
}

/** The row a statement referred to (a session's user) no longer exists: PostgreSQL's foreign_key_violation. */
export function isForeignKeyViolation (err: unknown): boolean {
  return (err as { code?: unknown } | undefined)?.code === '23503'
}

/** A statement ran past its statement_timeout (or was cancelled): PostgreSQL's query_canceled. */
export function isStatementTimeout (err: unknown): boolean {
  return (err as { code?: unknown } | undefined)?.code === '57014'
}

/** PostgreSQL unique_violation, with the name of the violated constraint; undefined for any other error. */
export function uniqueViolation (err: unknown): string | undefined {
  const pgError = err as { code?: string, constraint?: string } | undefined
  return pgError?.code === '23505' ? pgError.constraint ?? 'unique' : undefined
}

/** Whether the database answers a trivial query: the readiness check of /health. */
export async function databaseAnswers (db: { query: (text: string) => Promise<unknown> }): Promise<void> {
  await db.query('select 1')
}
