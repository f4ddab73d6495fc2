import { randomBytes } from 'node:crypto'
import { issueAccessToken } from '../src/db/access-tokens-repository.js'
import { ensureDatabase } from '../src/db/startup/ensure-database.js'
import { migrate } from '../src/db/startup/migrate.js'
import { createPool, redactConnectionString, type Pool } from '../src/db/pool.js'
import { detectStorage, type StorageInfo } from '../src/db/startup/storage.js'
import { insertUser } from '../src/db/users-repository.js'
import { silentLog } from '../src/logger.js'
import type { PhoneUser } from './phone.js'

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/motion_ingest_bench'
const TIMESCALE_IMAGE = 'timescale/timescaledb:2.28.2-pg15'

export interface BenchDatabase {
  url: string
  /** Where it came from, for the report. */
  source: string
  stop: () => Promise<void>
}

type Say = (line: string) => void

/**
 * DATABASE_URL (or the local default). With `loadtest`, a TimescaleDB
 * container from testcontainers when a container runtime exists, the same
 * image the test suite uses; without a runtime it says so and falls back.
 */
export async function resolveBenchDatabase (options: { databaseUrl?: string, loadtest: boolean, say: Say }): Promise<BenchDatabase> {
  const url = options.databaseUrl ?? DEFAULT_DATABASE_URL
  if (options.loadtest) {
    const container = await startTimescaleContainer(options.say)
    if (container) return container
  }
  return { url, source: options.databaseUrl ? 'DATABASE_URL' : 'default local PostgreSQL', stop: async () => {} }
}

async function startTimescaleContainer (say: Say): Promise<BenchDatabase | undefined> {
  const { getContainerRuntimeClient } = await import('testcontainers')
  try {
    await getContainerRuntimeClient()
  } catch (err) {
    say(`loadtest: no container runtime here (${(err as Error).message.split('\n')[0]}); using DATABASE_URL instead.`)
    return undefined
  }
  say(`loadtest: starting ${TIMESCALE_IMAGE} with testcontainers...`)
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql')
  const container = await new PostgreSqlContainer(TIMESCALE_IMAGE)
    .withDatabase('motion_ingest_bench').withUsername('postgres').withPassword('postgres').start()
  return {
    url: container.getConnectionUri(),
    source: `TimescaleDB container ${TIMESCALE_IMAGE} (testcontainers)`,
    stop: async () => { await container.stop() }
  }
}

/** The bench truncates `readings`; refuse databases whose name does not say they are disposable. */
export function assertDisposable (url: string, allowTruncate: boolean): void {
  const name = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''))
  if (allowTruncate || /bench|test|load/i.test(name)) return
  throw new Error(`The bench empties the readings table of "${name}". Point DATABASE_URL at a database whose name contains ` +
    '"bench" or "test" (the default is motion_ingest_bench), or pass --allow-truncate.')
}

/** Creates the database if missing, applies migrations and returns a small pool plus what storage it is. */
export async function prepareDatabase (url: string): Promise<{ pool: Pool, storage: StorageInfo }> {
  await ensureDatabase(url)
  const pool = createPool({ connectionString: url, max: 4, logger: silentLog, applicationName: 'motion-ingest-bench' })
  try {
    await migrate(pool, silentLog)
    return { pool, storage: await detectStorage(pool, false) }
  } catch (err) {
    await pool.end()
    throw err
  }
}

export const describeDatabase = (url: string) => redactConnectionString(url)

/** Empties readings between phases so every phase writes into the same, empty table and index. */
export async function truncateReadings (pool: Pool): Promise<void> {
  await pool.query('truncate readings')
}

/** Creates `count` beta testers with a pre-issued token each. */
export async function createBenchUsers (pool: Pool, count: number): Promise<Array<PhoneUser & { id: number }>> {
  const run = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`
  const users: Array<PhoneUser & { id: number }> = new Array(count)
  let next = 0
  const worker = async () => {
    while (next < count) {
      const i = next++
      const email = `bench-${run}-${i}@bench.test`
      const publicKey = `bench-key-${run}-${i}`
      const user = await insertUser(pool, { name: `Bench phone ${i}`, email, publicKey, role: 'BETATESTER' })
      const { accessToken } = await issueAccessToken(pool, user.id, 24 * 3600)
      users[i] = { id: user.id, email, publicKey, token: accessToken }
    }
  }
  await Promise.all(Array.from({ length: 4 }, worker))
  return users
}

/** The server settings that decide how writes and commits behave under load; printed with every run. */
export const WRITE_SETTINGS = ['shared_buffers', 'wal_buffers', 'max_wal_size', 'checkpoint_timeout', 'wal_compression', 'synchronous_commit'] as const

export async function readWriteSettings (pool: Pool): Promise<Record<string, string>> {
  const { rows } = await pool.query<{ name: string, setting: string }>(
    'select name, current_setting(name) as setting from pg_settings where name = any($1::text[])', [[...WRITE_SETTINGS]])
  return Object.fromEntries(rows.map(row => [row.name, row.setting]))
}

export interface WalCounters {
  /** WAL position in bytes (pg_current_wal_lsn): the difference across a phase is the WAL it wrote. */
  walBytes: number
  /** Started because WAL reached max_wal_size: under load, each is followed by slower commits (full-page writes). */
  requested: number
  /** Started by checkpoint_timeout. */
  timed: number
}

/** Server-wide counters (pg_stat_bgwriter): the difference across a phase is what happened during it. */
export async function readWalCounters (pool: Pool): Promise<WalCounters> {
  const { rows } = await pool.query<{ requested: string, timed: string, wal_bytes: string }>(
    `select checkpoints_req as requested, checkpoints_timed as timed, pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint as wal_bytes
     from pg_stat_bgwriter`)
  return { requested: Number(rows[0]?.requested ?? 0), timed: Number(rows[0]?.timed ?? 0), walBytes: Number(rows[0]?.wal_bytes ?? 0) }
}
