import { execFile } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { promisify } from 'node:util'
import { parquetMetadata, parquetReadObjects } from 'hyparquet'
import { compressors } from 'hyparquet-compressors'
import pg from 'pg'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { SessionLabels } from '../../src/labels/session-labels.js'
import { generateReadings, insertReadings, insertSession } from '../fixtures/sessions.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { insertSyntheticSession, microsOf, parseCsv } from './fixtures.js'
import type { SyntheticSession } from './synthetic.js'

const run = promisify(execFile)
const START = Date.UTC(2024, 4, 1, 8, 0, 0) * 1000
const SMALL: SyntheticSession = { startUs: START + 3_000, seconds: 6, offsetsUs: [0, 2_000, 7_000] }
// Far more CSV than the socket buffers between the database, the server and a client hold.
const BIG = 600_000
const IDLE_TIMEOUT_MS = 1500

const databaseUrl = await createTestDatabase()
// One export at a time per user, so that a second download of the same user is refused.
const app = await build(databaseUrl, { EXPORT_IDLE_TIMEOUT_MS: String(IDLE_TIMEOUT_MS), EXPORT_MAX_PER_USER: '1' })
await app.listen({ host: '127.0.0.1', port: 0 })
const { port } = app.server.address() as AddressInfo
const owner = await createUserWithToken(app)
const other = await createUserWithToken(app)
const admin = await createUserWithToken(app, 'ADMIN')
const small = await insertSyntheticSession(app, owner.user.id, SMALL, { createdAt: '2024-05-01T08:00:00Z', metadata: { activity: 'walking' } })
await new SessionLabels(app.db).add(small, null, { startUs: START + 3_000_000, endUs: START + 6_000_001, label: 'cycling', note: null })
// The big session's owner downloads nothing else, so the slot tests do not wait on the owner's.
const hoarder = await createUserWithToken(app)
const big = await insertSession(app.db, hoarder.user.id, { createdAt: '2024-05-02T08:00:00Z' })
await generateReadings(app.db, big, BIG)
const folder = await mkdtemp(path.join(tmpdir(), 'session-export-'))

// A connection of its own, to watch the downloads' COPYs without borrowing from a pool under test.
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
function start (url: string, token: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: url, headers: bearer(token), agent: false }, response => {
      response.pause()
      open.push(response)
      resolve(response)
    }).on('error', reject)
  })
}

async function bodyOf (response: http.IncomingMessage): Promise<Buffer> {
  const pieces: Buffer[] = []
  for await (const piece of response) pieces.push(piece as Buffer)
  return Buffer.concat(pieces)
}

const get = (url: string, token: string) => app.inject({ method: 'GET', url, headers: bearer(token) })

const arrayBufferOf = (bytes: Buffer) => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer

async function readParquet (bytes: Buffer): Promise<Array<Record<string, unknown>>> {
  return parquetReadObjects({ file: arrayBufferOf(bytes), compressors, parsers: { timestampFromMicroseconds: (us: bigint) => us } }) as Promise<Array<Record<string, unknown>>>
}

const CHANNELS = ['acc_x', 'acc_y', 'acc_z', 'gyro_x', 'gyro_y', 'gyro_z', 'mag_x', 'mag_y', 'mag_z']

describe('GET /sessions/:id/export', () => {
  it('gives the owner their session as wide CSV and as Parquet holding the same values', async () => {
    const csv = await get(`/sessions/${small}/export?layout=wide&format=csv&rate=50`, owner.token)
    expect(csv.statusCode).toBe(200)
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8')
    expect(csv.headers['content-disposition']).toBe(`attachment; filename="session-${small}-wide-50hz.csv"`)
    const rows = parseCsv(csv.body)
    expect(csv.body.split('\n')[0]).toBe('timestamp,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z,mag_x,mag_y,mag_z,label,session_id,segment')
    // 6 s at 50 Hz, less the instants before every sensor's first reading and after any's last.
    expect(rows.length).toBeGreaterThan(290)
    expect(new Set(rows.map(row => row.label))).toEqual(new Set(['walking', 'cycling']))

    const parquet = await get(`/sessions/${small}/export?layout=wide&format=parquet&rate=50`, owner.token)
    expect(parquet.statusCode).toBe(200)
    expect(parquet.headers['content-type']).toBe('application/vnd.apache.parquet')
    expect(parquet.headers['content-disposition']).toBe(`attachment; filename="session-${small}-wide-50hz.parquet"`)
    // Read back by a reader written apart from the writer: the CSV's values, to the bit and the microsecond.
    const records = await readParquet(parquet.rawPayload)
    expect(records.length).toBe(rows.length)
    records.forEach((record, i) => {
      const row = rows[i]!
      expect(record.timestamp).toBe(BigInt(microsOf(row.timestamp!)))
      for (const channel of CHANNELS) expect(record[channel]).toBe(Number(row[channel]))
      expect(record.label).toBe(row.label)
      expect(record.session_id).toBe(BigInt(small))
      expect(record.segment).toBe(Number(row.segment))
    })
    const metadata = parquetMetadata(arrayBufferOf(parquet.rawPayload))
    expect(metadata.key_value_metadata).toEqual(expect.arrayContaining([
      { key: 'motion_ingest.session_id', value: String(small) },
      { key: 'motion_ingest.layout', value: 'wide' },
      { key: 'motion_ingest.rate_hz', value: '50' }
    ]))
  })

  it('is the file a dataset export of the session holds, with the same defaults (rate, window, overlap, purity)', async () => {
    const own = await get(`/sessions/${small}/export?layout=windows`, owner.token)
    expect(own.statusCode).toBe(200)
    // The session's default rate is its readings' median, 100 Hz: 2.56 s is 256 samples.
    expect(own.headers['content-disposition']).toBe(`attachment; filename="session-${small}-windows-100hz.csv"`)
    expect(own.body.split('\n')[0]).toContain(',mag_z_255')
    const zip = path.join(folder, 'dataset.zip')
    const dataset = await start(`/datasets/export?sessions=${small}&layout=windows`, admin.token)
    expect(dataset.statusCode).toBe(200)
    await pipeline(dataset, createWriteStream(zip))
    await run('unzip', ['-q', zip, '-d', path.join(folder, 'dataset')])
    expect(own.body).toBe(await readFile(path.join(folder, 'dataset', 'data', `session-${small}.windows.csv`), 'utf8'))
  })

  it('keeps the long CSV byte for byte what readings.csv sends', async () => {
    const long = await get(`/sessions/${small}/export?layout=long`, owner.token)
    expect(long.statusCode).toBe(200)
    expect(long.headers['content-disposition']).toBe(`attachment; filename="session-${small}-long.csv"`)
    const readings = await get(`/sessions/${small}/readings.csv`, owner.token)
    expect(readings.statusCode).toBe(200)
    expect(long.rawPayload.equals(readings.rawPayload)).toBe(true)
    const parquet = await get(`/sessions/${small}/export?layout=long&format=parquet`, owner.token)
    expect(parquet.statusCode).toBe(200)
    expect((await readParquet(parquet.rawPayload)).length).toBe(long.body.trimEnd().split('\n').length - 1)
  })

  it('answers 404 for someone else\'s session and for none, and serves an admin any session', async () => {
    const foreign = await get(`/sessions/${small}/export?format=parquet`, other.token)
    expect(foreign.statusCode).toBe(404)
    expect(foreign.json()).toEqual({ error: 'NOT_FOUND', message: `Session ${small} does not exist` })
    const missing = await get('/sessions/999999999/export', owner.token)
    expect(missing.statusCode).toBe(404)
    expect(missing.json()).toEqual({ error: 'NOT_FOUND', message: 'Session 999999999 does not exist' })
    const asAdmin = await get(`/sessions/${small}/export?format=parquet&rate=50`, admin.token)
    expect(asAdmin.statusCode).toBe(200)
    expect((await readParquet(asAdmin.rawPayload)).length).toBeGreaterThan(290)
    expect((await get(`/sessions/${small}/export`, '')).statusCode).toBe(401)
  })

  it('validates as the dataset export does: a bad rate, layout or window is 400', async () => {
    for (const query of ['rate=0', 'rate=-5', 'rate=abc', 'rate=5000', 'layout=tall', 'format=xlsx', 'window=soon', 'overlap=1', 'purity=0.5']) {
      const response = await get(`/sessions/${small}/export?${query}`, owner.token)
      expect(response.statusCode, query).toBe(400)
      expect(response.json().error, query).toBe('VALIDATION_FAILED')
      expect((await get(`/datasets/export?sessions=${small}&${query}`, admin.token)).statusCode, `dataset ${query}`).toBe(400)
    }
    // One window may not make the server hold gigabytes: 1,000 s at 1,000 Hz is a million samples.
    const huge = await get(`/sessions/${small}/export?layout=windows&window=1000s&rate=1000`, owner.token)
    expect(huge.statusCode).toBe(400)
    expect(huge.json()).toMatchObject({ error: 'WINDOW_TOO_LONG' })
  })

  it('answers 409 for a session still recording and for one without readings', async () => {
    const active = await insertSession(app.db, owner.user.id, { destroyed: false })
    await insertReadings(app.db, active, [{ timestamp: '2024-06-01T10:00:00Z', sensor: 'Accelerometer', x: 1, y: 2, z: 3 }])
    const recording = await get(`/sessions/${active}/export`, owner.token)
    expect(recording.statusCode).toBe(409)
    expect(recording.json().error).toBe('CONFLICT')
    const empty = await insertSession(app.db, owner.user.id)
    const none = await get(`/sessions/${empty}/export?layout=long`, owner.token)
    expect(none.statusCode).toBe(409)
    expect(none.json().error).toBe('NO_READINGS')
  })

  it('takes one of the user\'s export slots, shared with readings.csv (429 past EXPORT_MAX_PER_USER), and ends a stalled download at the idle timeout', async () => {
    const stalled = await start(`/sessions/${big}/export?layout=long`, hoarder.token)
    expect(stalled.statusCode).toBe(200)
    expect(stalled.headers['content-type']).toBe('text/csv; charset=utf-8')
    await waitFor(async () => await runningCopies() === 1)
    const second = await start(`/sessions/${big}/export?layout=wide&format=parquet`, hoarder.token)
    expect(second.statusCode).toBe(429)
    expect(second.headers['retry-after']).toBe('5')
    expect(JSON.parse((await bodyOf(second)).toString())).toMatchObject({ error: 'TOO_MANY_EXPORTS' })
    // The slots are the user's, whichever download route holds them: the CSV route counts this one too.
    const csv = await start(`/sessions/${big}/readings.csv`, hoarder.token)
    expect(csv.statusCode).toBe(429)
    await bodyOf(csv)
    // Everyone else is served meanwhile.
    expect((await get(`/sessions/${small}/export?rate=50`, owner.token)).statusCode).toBe(200)
    expect((await app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200)
    // Nobody reads the first download: past the idle timeout its COPY ends and its slot is freed.
    const stalledAt = Date.now()
    await waitFor(async () => await runningCopies() === 0)
    expect(Date.now() - stalledAt).toBeLessThan(IDLE_TIMEOUT_MS + 5000)
    const complete = await new Promise<boolean>(resolve => {
      stalled.on('data', () => {})
      stalled.once('close', () => resolve(stalled.complete))
      stalled.resume()
    })
    expect(complete).toBe(false)
    // The slot is back once a request gets past the limit (to the 404 of a session not the hoarder's).
    await waitFor(async () => (await get(`/sessions/${small}/export?rate=50`, hoarder.token)).statusCode === 404)
    const again = await start(`/sessions/${big}/export?layout=wide&format=parquet`, hoarder.token)
    expect(again.statusCode).toBe(200)
    expect(again.headers['content-disposition']).toMatch(new RegExp(`^attachment; filename="session-${big}-wide-[0-9.]+hz\\.parquet"$`))
  })

  it('ends the COPY and frees the slot when the download is closed midway', async () => {
    await waitFor(async () => await runningCopies() === 0)
    const response = await start(`/sessions/${big}/export?layout=wide`, hoarder.token)
    expect(response.statusCode).toBe(200)
    await waitFor(async () => await runningCopies() === 1)
    response.destroy()
    await waitFor(async () => await runningCopies() === 0, 5000)
    // A whole download right after: the slot is back, and the file ends as the dataset's would.
    await waitFor(async () => {
      const whole = await get(`/sessions/${big}/export?layout=windows&format=parquet&rate=20`, hoarder.token)
      if (whole.statusCode !== 200) return false
      expect((await readParquet(whole.rawPayload)).length).toBeGreaterThan(0)
      return true
    }, 20_000)
  })
})
