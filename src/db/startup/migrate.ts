import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import type { Log } from '../../logger.js'
import type { Pool, PoolClient } from '../pool.js'

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../migrations/', import.meta.url))

const MIGRATION_FILE = /^(\d+)\.do\.([\w-]+)\.sql$/
// Any constant works; it only has to be the same for every instance of the service.
const MIGRATION_LOCK_KEY = 7_411_902_311

interface MigrationFile {
  version: number
  name: string
  sql: string
  checksum: string
}

export async function readMigrations (dir = MIGRATIONS_DIR): Promise<MigrationFile[]> {
  const files = (await readdir(dir)).filter(file => MIGRATION_FILE.test(file))
  const migrations = await Promise.all(files.map(async file => {
    const [, version, name] = MIGRATION_FILE.exec(file) as RegExpExecArray
    const sql = await readFile(new URL(file, `file://${dir.endsWith('/') ? dir : dir + '/'}`), 'utf8')
    return { version: Number(version), name: name as string, sql, checksum: createHash('sha256').update(sql).digest('hex') }
  }))
  return migrations.sort((a, b) => a.version - b.version)
}

/**
 * Applies pending migrations, each in its own transaction, under an advisory
 * lock so that instances starting together apply each migration once.
 * Before the first migration it creates the timescaledb extension when the
 * server offers it and has loaded it, because migrations decide
 * hypertable-or-table from pg_extension.
 */
export async function migrate (pool: Pool, logger: Log, dir = MIGRATIONS_DIR): Promise<number[]> {
  const log = logger.child({ component: 'migrate' })
  const migrations = await readMigrations(dir)
  let client = await checkOutLocked(pool)
  try {
    if (!await createTimescaleExtensionIfLoaded(client, log)) {
      // The failure may have been FATAL and closed the connection: go on with a new one.
      client.release(true)
      client = await checkOutLocked(pool)
    }
    await client.query(`create table if not exists schema_migrations (
      version integer primary key,
      name text not null,
      checksum text not null,
      applied_at timestamptz not null default now())`)
    const { rows } = await client.query<{ version: number, checksum: string }>('select version, checksum from schema_migrations')
    const applied = new Map(rows.map(row => [row.version, row.checksum]))
    const done: number[] = []
    for (const migration of migrations) {
      const checksum = applied.get(migration.version)
      if (checksum !== undefined) {
        if (checksum !== migration.checksum) {
          throw new Error(`Migration ${migration.version} (${migration.name}) changed after it was applied; add a new migration instead`)
        }
        continue
      }
      await client.query('begin')
      try {
        await client.query(migration.sql)
        await client.query('insert into schema_migrations (version, name, checksum) values ($1, $2, $3)',
          [migration.version, migration.name, migration.checksum])
        await client.query('commit')
      } catch (err) {
        await client.query('rollback').catch(() => {})
        throw new Error(`Migration ${migration.version} (${migration.name}) failed: ${(err as Error).message}`, { cause: err })
      }
      log.info({ version: migration.version, name: migration.name }, 'Migration applied.')
      done.push(migration.version)
    }
    return done
  } finally {
    await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => {})
    client.release()
  }
}

interface LockedClient {
  query: PoolClient['query']
  /** Returns the client to the pool, or discards it when it failed or `discard` is set. */
  release: (discard?: boolean) => void
}

/** Checks out a client that holds the migration lock and survives losing its connection. */
async function checkOutLocked (pool: Pool): Promise<LockedClient> {
  const client = await pool.connect()
  let broken = false
  // A checked-out client has no error listener of the pool's: a connection lost mid-migration
  // (a FATAL from the server) would be an unhandled 'error' event and end the process.
  // The pending query rejects anyway, so only remember not to reuse the client.
  const onError = () => { broken = true }
  client.on('error', onError)
  let released = false
  const release = (discard = false) => {
    if (released) return
    released = true
    client.off('error', onError)
    client.release(broken || discard)
  }
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY])
  } catch (err) {
    release(true)
    throw err
  }
  return { query: client.query.bind(client) as PoolClient['query'], release }
}

const LOAD_TIMESCALEDB_HINT = "add shared_preload_libraries = 'timescaledb' to postgresql.conf and restart PostgreSQL"

/**
 * Creates the timescaledb extension when the server offers it. Returns false
 * when creating it failed, after which the client must not be used again:
 * TimescaleDB answers `create extension` on a server that has not preloaded
 * its library with a FATAL error, which closes the connection.
 */
async function createTimescaleExtensionIfLoaded (client: LockedClient, log: Log): Promise<boolean> {
  const { rows: [row] } = await client.query<{ available: boolean, created: boolean, preload: string }>(`select
    exists (select 1 from pg_available_extensions where name = 'timescaledb') as available,
    exists (select 1 from pg_extension where extname = 'timescaledb') as created,
    current_setting('shared_preload_libraries') as preload`)
  if (!row?.available || row.created) return true
  if (!preloadsTimescaledb(row.preload)) {
    log.warn({ sharedPreloadLibraries: row.preload },
      `TimescaleDB is installed but not loaded, so readings go to a plain table; to use it, ${LOAD_TIMESCALEDB_HINT}.`)
    return true
  }
  try {
    await client.query('create extension if not exists timescaledb')
    return true
  } catch (err) {
    log.warn({ err }, `TimescaleDB is installed but the extension could not be created, so readings go to a plain table; check that the server has loaded it (${LOAD_TIMESCALEDB_HINT}).`)
    return false
  }
}

/** Whether a shared_preload_libraries value names TimescaleDB's loader ('timescaledb', '$libdir/timescaledb.so', quoted or not). */
export function preloadsTimescaledb (sharedPreloadLibraries: string): boolean {
  return sharedPreloadLibraries.split(',')
    .map(entry => entry.trim().replace(/^"|"$/g, '').split('/').pop()?.replace(/\.so$/, ''))
    .includes('timescaledb')
}
