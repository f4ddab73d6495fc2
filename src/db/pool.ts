import pg from 'pg'
import type { Log } from '../logger.js'

// bigint ids and counters fit comfortably in a JS number for this service's
// lifetime (2^53 readings); parsing them keeps the API free of numeric strings.
pg.types.setTypeParser(pg.types.builtins.INT8, value => Number(value))

export type Pool = pg.Pool
export type PoolClient = pg.PoolClient

/** Where a checked-out client comes from: the service's pool, or the bounded pool exports use (export-pool.ts). */
export interface ClientSource {
  connect: () => Promise<PoolClient>
}

export interface PoolOptions {
  connectionString: string
  max: number
  logger: Log
  applicationName?: string
}

export function createPool ({ connectionString, max, logger, applicationName = 'motion-ingest' }: PoolOptions): Pool {
  const pool = new pg.Pool({
    connectionString,
    max,
    application_name: applicationName,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000
  })
  // An idle client losing its server connection emits here; unhandled, it would crash the process.
  pool.on('error', err => logger.warn({ err }, 'Idle database client failed.'))
  return pool
}

/** Runs fn inside BEGIN/COMMIT on one client, rolling back on any error. */
export async function withTransaction<T> (pool: ClientSource, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  let broken = false
  // A checked-out client has no error listener of the pool's: a connection lost between two
  // statements (a database restart) would be an unhandled 'error' event and end the process.
  // The next statement then fails, and the client is discarded rather than returned.
  const onError = () => { broken = true }
  client.on('error', onError)
  try {
    await client.query('begin')
    const result = await fn(client)
    await client.query('commit')
    return result
  } catch (err) {
    try {
      await client.query('rollback')
    } catch {
      broken = true
    }
    throw err
  } finally {
    client.off('error', onError)
    client.release(broken)
  }
}

/** The connection string with its password replaced, for logs and /status. */
export function redactConnectionString (connectionString: string): string {
  try {
    const url = new URL(connectionString)
    if (url.password) url.password = '***'
    return url.toString()
  } catch {
    return '(unparseable connection string)'
  }
}
