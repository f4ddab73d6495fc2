import { execFile } from 'node:child_process'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { promisify } from 'node:util'
import pg from 'pg'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { CSV_HEADER } from '../../src/db/readings/readings-export.js'
import { generateReadings, insertSession } from '../fixtures/sessions.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'

const READINGS = 1_000_000
const execFileAsync = promisify(execFile)

const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl)
const owner = await createUserWithToken(app, 'BETATESTER')
const big = await insertSession(app.db, owner.user.id)
await generateReadings(app.db, big, READINGS)
await app.listen({ port: 0, host: '127.0.0.1' })
const { port } = app.server.address() as AddressInfo

// A connection of its own, so watching the server never borrows from the pool under test.
const observer = new pg.Client({ connectionString: databaseUrl })
await observer.connect()
afterAll(() => observer.end())

async function runningExports (): Promise<Array<{ pid: number, wait_event: string | null, application_name: string }>> {
  const { rows } = await observer.query(
    `select pid, wait_event, application_name from pg_stat_activity
     where datname = current_database() and pid <> pg_backend_pid() and query like 'copy (%'`)
  return rows
}

interface ChildDownload { status: number, bytes: number, lines: number, first: string[], last: string }

const DOWNLOADER = `
const [url, token] = process.argv.slice(1)
const response = await fetch(url, { headers: { authorization: 'Bearer ' + token } })
let bytes = 0, lines = 0, head = '', tail = ''
const decoder = new TextDecoder()
for await (const chunk of response.body) {
  bytes += chunk.length
  for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++
  const text = decoder.decode(chunk, { stream: true })
  if (head.length < 200) head += text.slice(0, 200)
  tail = (tail + text).slice(-200)
}
console.log(JSON.stringify({ status: response.status, bytes, lines, first: head.split('\\n').slice(0, 2), last: tail.trimEnd().split('\\n').at(-1) }))
`

async function downloadInChildProcess (url: string, token: string): Promise<ChildDownload> {
  const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', DOWNLOADER, url, token], { maxBuffer: 1 << 20 })
  return JSON.parse(stdout) as ChildDownload
}

function download (path: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, headers: bearer(owner.token) }, resolve).on('error', reject)
  })
}

describe('CSV export of a large session', () => {
  it(`streams ${READINGS} readings with flat server memory`, async () => {
    // Warm up code paths and pools so the baseline excludes one-off allocations.
    await app.inject({ url: `/sessions/${big}/readings?take=10`, headers: bearer(owner.token) })
    const baseline = process.memoryUsage.rss()
    let peak = baseline
    const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage.rss()) }, 10)
    // The client runs in another process, so this process's RSS is the server's alone.
    const download = await downloadInChildProcess(`http://127.0.0.1:${port}/sessions/${big}/readings.csv`, owner.token)
    clearInterval(sampler)
    peak = Math.max(peak, process.memoryUsage.rss())
    const growthMb = (peak - baseline) / 2 ** 20
    console.log(`[export-stream] ${READINGS} readings, ${(download.bytes / 2 ** 20).toFixed(1)} MiB of CSV, server process RSS growth ${growthMb.toFixed(1)} MiB`)

    expect(download.status).toBe(200)
    expect(download.lines).toBe(READINGS + 1)
    expect(download.first).toEqual([CSV_HEADER, '2024-01-01T00:00:00.000000Z,Accelerometer,0,3.3,0'])
    expect(download.last).toMatch(/^2024-01-01T00:16:39\.999000Z,Accelerometer,/)
    // The CSV is ~90 MiB; holding it, or the rows as objects, would exceed this bound.
    expect(growthMb).toBeLessThan(100)
  })

  it('cancels the query and frees its connection when the client disconnects mid-way', async () => {
    const response = await download(`/sessions/${big}/readings.csv`)
    expect(response.statusCode).toBe(200)
    const first: Buffer = await new Promise(resolve => response.once('data', resolve))
    expect(first.toString().startsWith(CSV_HEADER)).toBe(true)
    response.pause()

    // Unread, the export blocks the server on its socket: the COPY is still running.
    const [running] = await runningExports()
    expect(running).toBeDefined()
    // The export runs on the export pool; the service's pool lends nothing to it. (Its
    // connection is named by the backend, not counted in the service pool: background work,
    // the reaper's sweep, may hold a service connection at any moment.)
    expect(app.exportPool.active).toBe(1)
    expect(running?.application_name).toBe('motion-ingest-export')

    response.destroy()
    await vi.waitFor(async () => {
      expect(await runningExports()).toEqual([])
      expect(app.exportPool.active).toBe(0)
    }, { timeout: 10_000, interval: 50 })
    const { rows } = await observer.query('select 1 from pg_stat_activity where pid = $1', [running?.pid])
    expect(rows).toEqual([])

    // The pool still serves requests.
    const page = await app.inject({ url: `/sessions/${big}/readings?take=3`, headers: bearer(owner.token) })
    expect(page.json().items).toHaveLength(3)
  })
})
