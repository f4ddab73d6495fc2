import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import type { Log } from '../logger.js'
import type { Pool } from './pool.js'

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url))

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
 * server offers it, because migrations decide hypertable-or-table from pg_extension.
 */
export async function migrate (pool: Pool, logger: Log, dir = MIGRATIONS_DIR): Promise<number[]> {
  const log = logger.child({ component: 'migrate' })
  const migrations = await readMigrations(dir)
  const client = await pool.connect()
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY])
    await createTimescaleExtensionIfAvailable(client, log)
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
        await client.query('rollback')
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

async function createTimescaleExtensionIfAvailable (client: { query: Pool['query'] }, log: Log): Promise<void> {
  const { rowCount } = await client.query("select 1 from pg_available_extensions where name = 'timescaledb'")
  if (!rowCount) return
  try {
    await client.query('create extension if not exists timescaledb')
  } catch (err) {
    // Typically shared_preload_libraries lacks timescaledb; the readings table then stays plain.
    log.warn({ err }, 'TimescaleDB is installed but the extension could not be created; using a plain table.')
  }
}
