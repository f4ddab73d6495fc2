import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type pg from 'pg'
import { from as copyFrom, to as copyTo } from 'pg-copy-streams'
import { binaryCopyChunks } from './baselines.js'
import { COPY_READINGS_BINARY } from './binary-copy.js'
import { READINGS_PER_BATCH } from './readings.js'

export interface TransferTiming {
  seconds: number
  bytes: number
  lines: number
  readingsPerSecond: number
}

export interface ExportResult {
  status: 'measured' | 'skipped' | 'failed'
  message: string
  readings: number
  sessionId?: number
  service?: TransferTiming
  direct?: TransferTiming
  /** service readings/s over direct COPY TO readings/s. */
  ratio?: number
}

export interface ExportOptions {
  pool: pg.Pool
  baseUrl: string
  userId: number
  token: string
  readings: number
  /** Each side runs this many times, alternating; the best run counts. */
  repeats: number
}

/** Stores one finished session of `readings` readings straight into the tables. */
export async function createExportSession (pool: pg.Pool, userId: number, readings: number): Promise<{ sessionId: number, stored: number }> {
  const batches = Math.ceil(readings / READINGS_PER_BATCH)
  const stored = batches * READINGS_PER_BATCH
  const { rows: [row] } = await pool.query<{ id: string }>(
    `insert into sessions (user_id, expires_at, destroyed_at, destroy_reason, integrity,
       total_sensor_readings_written, total_sensor_readings_sent, metadata)
     values ($1, now(), now(), 'client', 'ok', $2, $2, '{"bench": "export"}') returning id`, [userId, stored])
  const sessionId = Number(row?.id)
  const client = await pool.connect()
  try {
    const plan = { sessions: 1, batches, firstSessionId: sessionId, startMs: Date.now() - 24 * 3600_000 }
    await pipeline(Readable.from(binaryCopyChunks(plan)), client.query(copyFrom(COPY_READINGS_BINARY)))
  } finally {
    client.release()
  }
  await pool.query('analyze readings')
  return { sessionId, stored }
}

function counter (): { sink: Writable, totals: () => { bytes: number, lines: number } } {
  let bytes = 0
  let lines = 0
  const sink = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      bytes += chunk.length
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++
      callback()
    }
  })
  return { sink, totals: () => ({ bytes, lines }) }
}

const timing = (started: number, totals: { bytes: number, lines: number }): TransferTiming => {
  const seconds = (performance.now() - started) / 1000
  // One header line, then one line per reading.
  return { seconds, ...totals, readingsPerSecond: Math.max(0, totals.lines - 1) / seconds }
}

/** COPY (select ...) TO STDOUT as CSV through one pg client: the database's own export speed. */
export async function directCopyTo (pool: pg.Pool, sessionId: number): Promise<TransferTiming> {
  const client = await pool.connect()
  try {
    const { sink, totals } = counter()
    const started = performance.now()
    await pipeline(client.query(copyTo(
      `copy (select ts, sensor, x, y, z from readings where session_id = ${Number(sessionId)} order by ts)
       to stdout with (format csv, header)`)), sink)
    return timing(started, totals())
  } finally {
    client.release()
  }
}

export async function serviceCsv (baseUrl: string, sessionId: number, token: string): Promise<TransferTiming | Response> {
  const started = performance.now()
  const response = await fetch(`${baseUrl}/sessions/${sessionId}/readings.csv`, { headers: { authorization: `Bearer ${token}` } })
  if (!response.ok || !response.body) return response
  const { sink, totals } = counter()
  await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), sink)
  return timing(started, totals())
}

/**
 * GET /sessions/:id/readings.csv of a large session against COPY TO through
 * pg. Skipped, with the reason, while the route does not exist (HTTP 404).
 */
export async function runExportPhase (options: ExportOptions): Promise<ExportResult> {
  const { sessionId, stored } = await createExportSession(options.pool, options.userId, options.readings)
  const base = { readings: stored, sessionId }
  const probe = await fetch(`${options.baseUrl}/sessions/${sessionId}/readings.csv`, {
    method: 'HEAD', headers: { authorization: `Bearer ${options.token}` }
  }).catch(() => undefined)
  if (probe?.status === 404) {
    return { status: 'skipped', message: 'GET /sessions/:id/readings.csv answers 404: the CSV route is not on this branch yet', ...base }
  }
  let service: TransferTiming | undefined
  let direct: TransferTiming | undefined
  for (let run = 0; run < Math.max(1, options.repeats); run++) {
    const copy = await directCopyTo(options.pool, sessionId)
    if (!direct || copy.seconds < direct.seconds) direct = copy
    const http = await serviceCsv(options.baseUrl, sessionId, options.token)
    if (http instanceof Response) {
      const body = await http.text().catch(() => '')
      if (http.status === 404) {
        return { status: 'skipped', message: `GET /sessions/:id/readings.csv answers 404 (${body.slice(0, 120)}): the CSV route is not on this branch yet`, ...base, direct }
      }
      return { status: 'failed', message: `GET /sessions/:id/readings.csv answered ${http.status}: ${body.slice(0, 200)}`, ...base, direct }
    }
    if (!service || http.seconds < service.seconds) service = http
  }
  const rowsOk = service!.lines - 1 === stored
  return {
    status: rowsOk ? 'measured' : 'failed',
    message: rowsOk ? 'ok' : `the CSV had ${service!.lines - 1} data lines, expected ${stored}`,
    ...base,
    service,
    direct,
    ratio: service!.readingsPerSecond / direct!.readingsPerSecond
  }
}
