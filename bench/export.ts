import { get, type IncomingMessage } from 'node:http'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type pg from 'pg'
import { from as copyFrom, to as copyTo } from 'pg-copy-streams'
import { EXACT_FLOAT_OUTPUT_SQL, READING_ORDER_SQL, SENSOR_NAME_SQL, TIMESTAMP_SQL } from '../src/db/readings/readings-sql.js'
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
  /** COPY TO STDOUT through pg of the same query the route runs (ISO timestamps, sensor names, exact floats). */
  direct?: TransferTiming
  /** COPY TO STDOUT of the raw columns (for context: what the formatting costs the database). */
  rawCopy?: TransferTiming
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

/** The route's query: the same columns, formatting and order as GET /sessions/:id/readings.csv. */
export function routeCopySql (sessionId: number): string {
  return `copy (select ${TIMESTAMP_SQL} as timestamp, ${SENSOR_NAME_SQL} as sensor, x, y, z
    from readings where session_id = ${Number(sessionId)} order by ${READING_ORDER_SQL}) to stdout with (format csv, header)`
}

export const rawCopySql = (sessionId: number) =>
  `copy (select ts, sensor, x, y, z from readings where session_id = ${Number(sessionId)} order by ts) to stdout with (format csv, header)`

/** COPY (select ...) TO STDOUT as CSV through one pg client, in a read-only transaction like the route's. */
export async function directCopyTo (pool: pg.Pool, sql: string): Promise<TransferTiming> {
  const client = await pool.connect()
  try {
    const { sink, totals } = counter()
    const started = performance.now()
    await client.query('begin read only')
    await client.query(EXACT_FLOAT_OUTPUT_SQL)
    await pipeline(client.query(copyTo(sql)), sink)
    await client.query('commit')
    return timing(started, totals())
  } finally {
    client.release()
  }
}

/** A failed HTTP answer: status and body. */
export interface HttpFailure { status: number, body: string }

/**
 * GET /sessions/:id/readings.csv, counting bytes and lines. node:http rather
 * than fetch: web streams cost the client more than the server under test.
 */
export async function serviceCsv (baseUrl: string, sessionId: number, token: string): Promise<TransferTiming | HttpFailure> {
  const started = performance.now()
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    get(`${baseUrl}/sessions/${sessionId}/readings.csv`, { headers: { authorization: `Bearer ${token}` } }, resolve).once('error', reject)
  })
  if (response.statusCode !== 200) {
    let body = ''
    for await (const chunk of response) body += String(chunk)
    return { status: response.statusCode ?? 0, body }
  }
  const { sink, totals } = counter()
  await pipeline(response, sink)
  return timing(started, totals())
}

/**
 * GET /sessions/:id/readings.csv of a large session against COPY TO through
 * pg. Skipped, with the reason, while the route does not exist (HTTP 404).
 */
export async function runExportPhase (options: ExportOptions): Promise<ExportResult> {
  const { sessionId, stored } = await createExportSession(options.pool, options.userId, options.readings)
  const base = { readings: stored, sessionId }
  let service: TransferTiming | undefined
  let direct: TransferTiming | undefined
  let rawCopy: TransferTiming | undefined
  const best = (a: TransferTiming | undefined, b: TransferTiming) => !a || b.seconds < a.seconds ? b : a
  for (let run = 0; run < Math.max(1, options.repeats); run++) {
    direct = best(direct, await directCopyTo(options.pool, routeCopySql(sessionId)))
    rawCopy = best(rawCopy, await directCopyTo(options.pool, rawCopySql(sessionId)))
    const http = await serviceCsv(options.baseUrl, sessionId, options.token)
    if ('status' in http) {
      const { body } = http
      // Fastify's own 404 names the route; the route's 404 (no such session) would be a failure.
      if (http.status === 404 && body.includes('Route GET')) {
        return { status: 'skipped', message: 'GET /sessions/:id/readings.csv does not exist on this branch yet (HTTP 404)', ...base, direct, rawCopy }
      }
      return { status: 'failed', message: `GET /sessions/:id/readings.csv answered ${http.status}: ${body.slice(0, 200)}`, ...base, direct, rawCopy }
    }
    service = best(service, http)
  }
  const rowsOk = service!.lines - 1 === stored
  return {
    status: rowsOk ? 'measured' : 'failed',
    message: rowsOk ? 'ok' : `the CSV had ${service!.lines - 1} data lines, expected ${stored}`,
    ...base,
    service,
    direct,
    rawCopy,
    ratio: service!.readingsPerSecond / direct!.readingsPerSecond
  }
}
