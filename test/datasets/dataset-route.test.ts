import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { promisify } from 'node:util'
import { parquetReadObjects } from 'hyparquet'
import { compressors } from 'hyparquet-compressors'
import pg from 'pg'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import type { DatasetManifest } from '../../src/datasets/manifest.js'
import { SessionLabels } from '../../src/labels/session-labels.js'
import { generateReadings, insertSession } from '../fixtures/sessions.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { insertSyntheticSession } from './fixtures.js'
import type { SyntheticSession } from './synthetic.js'

const run = promisify(execFile)
const START = Date.UTC(2024, 4, 1, 8, 0, 0) * 1000
const SMALL: SyntheticSession = { startUs: START + 3_000, seconds: 6, offsetsUs: [0, 2_000, 7_000] }
// Far more CSV than the socket buffers between the database, the server and a client hold.
const BIG = 600_000

const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl, { EXPORT_IDLE_TIMEOUT_MS: '1500', DATASET_PSEUDONYM_KEY: 'route-test-key' })
await app.listen({ host: '127.0.0.1', port: 0 })
const { port } = app.server.address() as AddressInfo
const admin = await createUserWithToken(app, 'ADMIN')
const otherAdmin = await createUserWithToken(app, 'ADMIN')
const tester = await createUserWithToken(app)
const small = await insertSyntheticSession(app, tester.user.id, SMALL, { createdAt: '2024-05-01T08:00:00Z', metadata: { activity: 'walking' } })
await new SessionLabels(app.db).add(small, null, { startUs: START + 3_000_000, endUs: START + 6_000_001, label: 'cycling', note: null })
const big = await insertSession(app.db, tester.user.id, { createdAt: '2024-05-02T08:00:00Z' })
await generateReadings(app.db, big, BIG)
const folder = await mkdtemp(path.join(tmpdir(), 'dataset-route-'))

// A connection of its own, to watch the exports' COPYs without borrowing from a pool under test.
const observer = new pg.Client({ connectionString: databaseUrl })
await observer.connect()
afterAll(async () => {
  await observer.end()
  await rm(folder, { recursive: true, force: true })
})

async function runningCopies (): Promise<number> {
  const { rows } = await observer.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity
     where datname = current_database() and pid <> pg_backend_pid() and query like 'copy (%'`)
  return rows[0]!.n
}

async function waitFor (check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms
  while (!await check()) {
    if (Date.now() > until) throw new Error('timed out waiting')
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

const open: http.IncomingMessage[] = []
afterEach(() => {
  for (const response of open.splice(0)) response.destroy()
})

/** Starts GET on a connection of its own and reads nothing of the body. */
function start (query: string, token: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: `/datasets/export?${query}`, headers: bearer(token), agent: false }, response => {
      response.pause()
      open.push(response)
      resolve(response)
    }).on('error', reject)
  })
}

async function bodyOf (response: http.IncomingMessage): Promise<string> {
  response.setEncoding('utf8')
  let body = ''
  for await (const chunk of response) body += chunk
  return body
}

describe('GET /datasets/export', () => {
  it('is for admins, answers 404 when nothing matches and 400 for a bad split or a window too long', async () => {
    const forbidden = await app.inject({ method: 'GET', url: '/datasets/export', headers: bearer(tester.token) })
    expect(forbidden.statusCode).toBe(403)
    const none = await app.inject({ method: 'GET', url: '/datasets/export?from=2030-01-01T00:00:00Z', headers: bearer(admin.token) })
    expect(none.statusCode).toBe(404)
    expect(none.json()).toMatchObject({ error: 'NO_MATCHING_SESSIONS' })
    const undeclared = await app.inject({ method: 'GET', url: `/datasets/export?sessions=${small}&sampleRate=100`, headers: bearer(admin.token) })
    expect(undeclared.statusCode).toBe(404)
    expect(undeclared.json().message).toMatch(/left out: 1 sample rate/)
    const badSplit = await app.inject({ method: 'GET', url: '/datasets/export?split=0.8,0.3,0.1', headers: bearer(admin.token) })
    expect(badSplit.statusCode).toBe(400)
    // The window cap holds for whole exports too: 1,000 s at 1,000 Hz would be a million samples a row.
    const huge = await app.inject({ method: 'GET', url: `/datasets/export?sessions=${small}&layout=windows&window=1000s&rate=1000`, headers: bearer(admin.token) })
    expect(huge.statusCode).toBe(400)
    expect(huge.json()).toMatchObject({ error: 'WINDOW_TOO_LONG' })
  })

  it('streams a zip any unzip opens, with the data files, labels.csv and a manifest whose digests match', async () => {
    const response = await start(`sessions=${small}&layout=wide&format=parquet&rate=50&split=0.5,0.5,0&seed=s`, admin.token)
    expect(response.statusCode).toBe(200)
    expect(response.headers['content-type']).toBe('application/zip')
    expect(response.headers['content-disposition']).toMatch(/^attachment; filename="dataset-\d{8}T\d{6}\.zip"$/)
    const zip = path.join(folder, 'small.zip')
    await pipeline(response, createWriteStream(zip))
    const out = path.join(folder, 'small')
    // Info-ZIP's unzip, which tests every entry's CRC as it extracts.
    await run('unzip', ['-q', zip, '-d', out])
    const manifest = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8')) as DatasetManifest
    expect(manifest.sessions.map(session => session.id)).toEqual([small])
    const [session] = manifest.sessions
    expect(session!.user).toMatch(/^u_[0-9a-f]{16}$/)
    expect(session!.labels.seconds).toEqual({ cycling: 3, walking: expect.closeTo(2.997, 6) })
    expect(manifest.files.map(file => file.path)).toEqual([session!.file.path, 'labels.csv'])
    for (const file of manifest.files) {
      expect(createHash('sha256').update(await readFile(path.join(out, file.path))).digest('hex')).toBe(file.sha256)
    }
    const parquet = await readFile(path.join(out, session!.file.path))
    const rows = await parquetReadObjects({ file: parquet.buffer.slice(parquet.byteOffset, parquet.byteOffset + parquet.byteLength), compressors })
    expect(rows.length).toBe(session!.rows)
    expect(new Set(rows.map(row => row.label))).toEqual(new Set(['walking', 'cycling']))
  })

  it('runs one export per admin, on one export connection, and ends it when its reader stalls', async () => {
    const stalled = await start(`sessions=${big}&layout=long`, admin.token)
    expect(stalled.statusCode).toBe(200)
    await waitFor(async () => await runningCopies() === 1)
    const second = await start(`sessions=${small}`, admin.token)
    expect(second.statusCode).toBe(429)
    expect(second.headers['retry-after']).toBe('5')
    expect(JSON.parse(await bodyOf(second))).toMatchObject({ error: 'TOO_MANY_EXPORTS' })
    // Another admin's export runs meanwhile, and the service answers everyone else.
    const other = await start(`sessions=${small}`, otherAdmin.token)
    expect(other.statusCode).toBe(200)
    await bodyOf(other)
    expect((await app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200)
    expect(await runningCopies()).toBe(1)
    // Nobody reads the first download: past the idle timeout its COPY and its slot are freed.
    await waitFor(async () => await runningCopies() === 0)
    await waitFor(async () => (await app.inject({ method: 'GET', url: `/datasets/export?sessions=${small}`, headers: bearer(admin.token) })).statusCode === 200)
  })

  it('ends the COPY and frees the slot when the download is closed midway', async () => {
    const response = await start(`sessions=${big}&layout=wide`, admin.token)
    expect(response.statusCode).toBe(200)
    await waitFor(async () => await runningCopies() === 1)
    response.destroy()
    await waitFor(async () => await runningCopies() === 0, 5000)
    await waitFor(async () => (await app.inject({ method: 'GET', url: `/datasets/export?sessions=${small}`, headers: bearer(admin.token) })).statusCode === 200, 5000)
  })

  it('survives losing its database connection mid-export: the download is cut, the slot freed, the service unharmed', async () => {
    const response = await start(`sessions=${big}&layout=wide&format=parquet`, admin.token)
    expect(response.statusCode).toBe(200)
    await waitFor(async () => await runningCopies() === 1)
    await observer.query(`select pg_terminate_backend(pid) from pg_stat_activity
      where datname = current_database() and pid <> pg_backend_pid() and query like 'copy (%'`)
    const complete = await new Promise<boolean>(resolve => {
      response.on('data', () => {})
      response.once('end', () => resolve(response.complete))
      response.once('error', () => resolve(false))
      response.once('close', () => resolve(response.complete))
      response.resume()
    })
    expect(complete).toBe(false)
    await waitFor(async () => (await app.inject({ method: 'GET', url: `/datasets/export?sessions=${small}`, headers: bearer(admin.token) })).statusCode === 200, 5000)
    expect((await app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200)
  })
})
