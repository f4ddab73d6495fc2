import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import { afterAll, inject } from 'vitest'
import { buildApp, type BuildAppOptions } from '../src/app.js'
import { loadConfig, type Config } from '../src/config.js'
import { issueAccessToken } from '../src/db/access-tokens-repository.js'
import { insertUser } from '../src/db/users-repository.js'
import type { Role, User } from '../src/schemas/users.js'

/** Connection string of the server's maintenance database with another database name. */
function withDatabase (url: string, name: string): string {
  const parsed = new URL(url)
  parsed.pathname = `/${name}`
  return parsed.toString()
}

/**
 * Creates a fresh database for the calling test file and drops it after the
 * file's tests. Returns its connection string.
 */
export async function createTestDatabase (): Promise<string> {
  const serverUrl = inject('databaseServerUrl')
  const name = `mi_test_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: serverUrl })
  await admin.connect()
  await admin.query(`create database ${name}`)
  await admin.end()
  afterAll(async () => {
    const client = new pg.Client({ connectionString: serverUrl })
    await client.connect()
    await client.query(`drop database if exists ${name} with (force)`)
    await client.end()
  })
  return withDatabase(serverUrl, name)
}

/**
 * Config as the service would parse it from env, pointing at the test database.
 * Every inject() comes from 127.0.0.1, so the /auth rate limit is lifted unless
 * a test sets AUTH_RATE_LIMIT_PER_MINUTE itself (test/ops/rate-limit.test.ts).
 */
export function testConfig (databaseUrl: string, env: Record<string, string> = {}): Config {
  return loadConfig({ DATABASE_URL: databaseUrl, LOG_LEVEL: 'silent', AUTH_RATE_LIMIT_PER_MINUTE: '100000', ...env })
}

/** Builds and readies an app; it is closed after the file's tests. */
export async function build (databaseUrl: string, env: Record<string, string> = {}, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const app = await buildApp(testConfig(databaseUrl, env), { logger: false, ...options })
  afterAll(() => app.close())
  await app.ready()
  return app
}

let userCounter = 0

/** Inserts a user straight into the database and issues a token for them. */
export async function createUserWithToken (app: FastifyInstance, role: Role = 'BETATESTER', ttlSeconds = 3600): Promise<{ user: User, token: string }> {
  const n = `${process.pid}-${++userCounter}-${randomBytes(3).toString('hex')}`
  const user = await insertUser(app.db, { name: `User ${n}`, email: `user-${n}@example.test`, publicKey: `pk-${n}`, role })
  const { accessToken } = await issueAccessToken(app.db, user.id, ttlSeconds)
  return { user, token: accessToken }
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
