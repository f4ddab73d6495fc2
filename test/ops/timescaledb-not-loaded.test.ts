import pg from 'pg'
import pino from 'pino'
import { describe, expect, inject, it } from 'vitest'
import { migrate, readMigrations } from '../../src/db/startup/migrate.js'
import { createPool } from '../../src/db/pool.js'
import { timescaledbOnServer } from '../fixtures/timescaledb.js'
import { build, createTestDatabase } from '../helper.js'

/*
 * A server where TimescaleDB is installed but not preloaded (after installing
 * the package, before the restart that loads it) answers `create extension
 * timescaledb` with a FATAL error that closes the connection. Migrations must
 * still make every table, with a plain readings table, and say once how to
 * load TimescaleDB.
 */

const serverUrl = inject('databaseServerUrl')
const onServer = await timescaledbOnServer(serverUrl)
const realDatabaseUrl = await createTestDatabase()
const notPreloadedDatabaseUrl = await createTestDatabase()
const failingDatabaseUrl = await createTestDatabase()
const migrationCount = (await readMigrations()).length

interface LogLine { level: number, msg: string, [key: string]: unknown }
const WARN = 40

async function runMigrate (databaseUrl: string): Promise<{ applied: number[], lines: LogLine[] }> {
  const lines: LogLine[] = []
  const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as LogLine) } })
  const pool = createPool({ connectionString: databaseUrl, max: 3, logger })
  try {
    return { applied: await migrate(pool, logger), lines }
  } finally {
    await pool.end()
  }
}

async function withClient<T> (databaseUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl })
  client.on('error', () => {})
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end().catch(() => {})
  }
}

/** What migrations left: readings' kind of table, the extension, and how many migrations are recorded. */
async function migratedState (databaseUrl: string) {
  return withClient(databaseUrl, async client => {
    const { rows: [row] } = await client.query<{ relkind: string, extension: string | null, recorded: number }>(`select
      (select relkind::text from pg_catalog.pg_class where oid = 'public.readings'::regclass) as relkind,
      (select extversion from pg_catalog.pg_extension where extname = 'timescaledb') as extension,
      (select count(*)::int from public.schema_migrations) as recorded`)
    return row
  })
}

/**
 * Makes a database look, to unqualified catalog names, like one on a server
 * that offers TimescaleDB with the given shared_preload_libraries, and makes
 * `create extension` there end its connection with a FATAL error, as
 * TimescaleDB does when it is not preloaded. Needs no TimescaleDB files: the
 * public schema, searched before pg_catalog, shadows pg_available_extensions
 * and current_setting(text), and an event trigger terminates the backend.
 */
async function simulateTimescaledbInstalled (databaseUrl: string, sharedPreloadLibraries: string): Promise<void> {
  await withClient(databaseUrl, async client => {
    const database = pg.escapeIdentifier(new URL(databaseUrl).pathname.slice(1))
    await client.query(`
      create view public.pg_available_extensions as
        select 'timescaledb'::name as name, '2.28.3'::text as default_version,
          null::text as installed_version, 'simulated'::text as comment;
      create function public.current_setting (name text) returns text language sql stable as $$
        select case when name = 'shared_preload_libraries' then ${pg.escapeLiteral(sharedPreloadLibraries)}
          else pg_catalog.current_setting(name) end
      $$;
      create function public.terminate_own_backend () returns event_trigger language plpgsql as $$
      begin
        perform pg_catalog.pg_terminate_backend(pg_catalog.pg_backend_pid());
      end
      $$;
      create event trigger create_extension_is_fatal on ddl_command_start when tag in ('CREATE EXTENSION')
        execute function public.terminate_own_backend();
      alter database ${database} set search_path = public, pg_catalog;`)
  })
  // The simulation holds for new connections, as migrate's are.
  await withClient(databaseUrl, async client => {
    const { rows: [row] } = await client.query(`select
      (select count(*)::int from pg_available_extensions where name = 'timescaledb') as available,
      current_setting('shared_preload_libraries') as preload`)
    expect(row).toEqual({ available: 1, preload: sharedPreloadLibraries })
    await expect(client.query('create extension if not exists timescaledb')).rejects.toThrow(/terminating connection/)
  })
}

describe('migrations on a server where TimescaleDB is installed but not loaded', () => {
  it('on this server, when it is in that state: a plain readings table, one warning on how to load it, no crash', async ({ skip }) => {
    if (!onServer.available) skip('the server does not offer TimescaleDB (no extension files installed); the simulated tests below cover this state')
    if (onServer.preloaded) skip('the server preloads TimescaleDB; test/routes/health.test.ts expects a hypertable there')
    const { applied, lines } = await runMigrate(realDatabaseUrl)
    expect(applied).toHaveLength(migrationCount)
    expect(await migratedState(realDatabaseUrl)).toEqual({ relkind: 'r', extension: null, recorded: migrationCount })
    const warnings = lines.filter(line => line.level >= WARN)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]?.msg).toMatch(/TimescaleDB is installed but not loaded.*shared_preload_libraries = 'timescaledb'.*restart/)

    // The service starts there too, and says what it stores readings in.
    const app = await build(realDatabaseUrl)
    const status = (await app.inject({ url: '/status' })).json()
    expect(status.storage).toMatchObject({ kind: 'postgresql', readingsHypertable: false, timescaledbVersion: null })
  })

  it('simulated, not preloaded: never runs create extension, warns once, makes a plain table', async () => {
    await simulateTimescaledbInstalled(notPreloadedDatabaseUrl, 'pg_stat_statements')
    const { applied, lines } = await runMigrate(notPreloadedDatabaseUrl)
    expect(applied).toHaveLength(migrationCount)
    expect(await migratedState(notPreloadedDatabaseUrl)).toEqual({ relkind: 'r', extension: null, recorded: migrationCount })
    const warnings = lines.filter(line => line.level >= WARN)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatchObject({ component: 'migrate', sharedPreloadLibraries: 'pg_stat_statements' })
    expect(warnings[0]?.msg).toMatch(/TimescaleDB is installed but not loaded.*shared_preload_libraries = 'timescaledb'.*restart/)
    // A second run has nothing to do and says the same once.
    const again = await runMigrate(notPreloadedDatabaseUrl)
    expect(again.applied).toEqual([])
    expect(again.lines.filter(line => line.level >= WARN)).toHaveLength(1)
  })

  it('simulated, preloaded but create extension ends the connection anyway: goes on with a new connection and a plain table', async () => {
    await simulateTimescaledbInstalled(failingDatabaseUrl, 'timescaledb')
    const { applied, lines } = await runMigrate(failingDatabaseUrl)
    expect(applied).toHaveLength(migrationCount)
    expect(await migratedState(failingDatabaseUrl)).toEqual({ relkind: 'r', extension: null, recorded: migrationCount })
    const warnings = lines.filter(line => line.level >= WARN)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]?.msg).toMatch(/could not be created.*plain table.*shared_preload_libraries = 'timescaledb'/)
    expect(warnings[0]?.err).toMatchObject({ message: expect.stringMatching(/terminating connection/) })
  })
})
