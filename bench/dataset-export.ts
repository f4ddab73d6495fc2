import { randomBytes } from 'node:crypto'
import { get, type IncomingMessage } from 'node:http'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type pg from 'pg'
import { to as copyTo } from 'pg-copy-streams'
import { issueAccessToken } from '../src/db/access-tokens-repository.js'
import { insertUser } from '../src/db/users-repository.js'
import { directCopyTo, routeCopySql, type TransferTiming } from './export.js'
import type { ServerProcess } from './server-process.js'

/** One layout and format of GET /datasets/export, timed over the export session. */
export interface DatasetFormatTiming {
  layout: 'long' | 'wide' | 'windows'
  format: 'csv' | 'parquet'
  seconds: number
  /** Bytes of the zip. */
  bytes: number
  /** The session's readings over the seconds of the best run. */
  readingsPerSecond: number
  /** readingsPerSecond over COPY (select ...) TO STDOUT of the same rows. */
  ratio: number
  /** The minimum this layout is expected to reach against COPY TO, where there is one. */
  target?: number
}

export interface DatasetExportResult {
  status: 'measured' | 'skipped' | 'failed'
  message: string
  readings: number
  sessionId: number
  /** COPY of the same rows as the CSV download formats them, through pg: the reference of every ratio. */
  direct?: TransferTiming
  /** Binary COPY of the raw columns in time order, what the wide and windows layouts read: the fastest way the rows leave the database. */
  binaryCopy?: { seconds: number, bytes: number, readingsPerSecond: number }
  formats: DatasetFormatTiming[]
}

export interface DatasetExportOptions {
  pool: pg.Pool
  /** Starts the service under test; stopped at the end of the phase. */
  startService: () => Promise<ServerProcess>
  sessionId: number
  readings: number
  /** Each format and the COPY run this many times, alternating; the best run counts. */
  repeats: number
  say: (line: string) => void
}

/**
 * What is measured, and the goals: Parquet of the stored rows at least half
 * the rate of COPY TO, the wide grid at least 30 %. Windows, many more
 * values per reading (each sample in two windows at half overlap), are
 * shown without a goal.
 */
export const DATASET_FORMATS: Array<Pick<DatasetFormatTiming, 'layout' | 'format' | 'target'>> = [
  { layout: 'long', format: 'csv' },
  { layout: 'long', format: 'parquet', target: 0.5 },
  { layout: 'wide', format: 'csv', target: 0.3 },
  { layout: 'wide', format: 'parquet', target: 0.3 },
  { layout: 'windows', format: 'parquet' }
]

async function adminToken (pool: pg.Pool): Promise<string> {
  const tag = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`
  const user = await insertUser(pool, { name: `Bench admin ${tag}`, email: `bench-admin-${tag}@bench.test`, publicKey: `bench-admin-key-${tag}`, role: 'ADMIN' })
  return (await issueAccessToken(pool, user.id, 3600)).accessToken
}

async function download (baseUrl: string, path: string, token: string): Promise<{ status: number, bytes: number, seconds: number, body?: string }> {
  const started = performance.now()
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    get(`${baseUrl}${path}`, { headers: { authorization: `Bearer ${token}` } }, resolve).once('error', reject)
  })
  if (response.statusCode !== 200) {
    let body = ''
    for await (const chunk of response) body += String(chunk)
    return { status: response.statusCode ?? 0, bytes: 0, seconds: 0, body }
  }
  let bytes = 0
  await pipeline(response, new Writable({ write (chunk: Buffer, _encoding, callback) { bytes += chunk.length; callback() } }))
  return { status: 200, bytes, seconds: (performance.now() - started) / 1000 }
}

/** COPY of the raw columns in binary, timed through one pg client. */
async function binaryCopy (pool: pg.Pool, sessionId: number, readings: number): Promise<NonNullable<DatasetExportResult['binaryCopy']>> {
  const client = await pool.connect()
  try {
    let bytes = 0
    const started = performance.now()
    await pipeline(client.query(copyTo(`copy (select ts, sensor, x, y, z from readings where session_id = ${Number(sessionId)} order by ts) to stdout with (format binary)`)),
      new Writable({ write (chunk: Buffer, _encoding, callback) { bytes += chunk.length; callback() } }))
    const seconds = (performance.now() - started) / 1000
    return { seconds, bytes, readingsPerSecond: readings / seconds }
  } finally {
    client.release()
  }
}

/**
 * GET /datasets/export of the export phase's session in each layout and
 * format, against COPY TO of the same rows, alternating so that both see
 * the same machine. The session's report is computed first, so that no run
 * pays for it.
 */
export async function runDatasetExportPhase (options: DatasetExportOptions): Promise<DatasetExportResult> {
  const base = { readings: options.readings, sessionId: options.sessionId, formats: [] as DatasetFormatTiming[] }
  const token = await adminToken(options.pool)
  const server = await options.startService()
  try {
    const report = await download(server.baseUrl, `/sessions/${options.sessionId}/report`, token)
    if (report.status !== 200) return { status: 'failed', message: `GET /sessions/:id/report answered ${report.status}: ${report.body?.slice(0, 200)}`, ...base }
    let direct: TransferTiming | undefined
    let binary: DatasetExportResult['binaryCopy']
    const best = new Map<string, { seconds: number, bytes: number }>()
    for (let run = 0; run < Math.max(1, options.repeats); run++) {
      const copy = await directCopyTo(options.pool, routeCopySql(options.sessionId))
      if (!direct || copy.seconds < direct.seconds) direct = copy
      const raw = await binaryCopy(options.pool, options.sessionId, options.readings)
      if (!binary || raw.seconds < binary.seconds) binary = raw
      for (const { layout, format } of DATASET_FORMATS) {
        const result = await download(server.baseUrl, `/datasets/export?sessions=${options.sessionId}&layout=${layout}&format=${format}&rate=50`, token)
        if (result.status === 404 && result.body?.includes('Route GET')) {
          return { status: 'skipped', message: 'GET /datasets/export does not exist on this branch (HTTP 404)', ...base, direct }
        }
        if (result.status !== 200) return { status: 'failed', message: `GET /datasets/export (${layout}, ${format}) answered ${result.status}: ${result.body?.slice(0, 200)}`, ...base, direct }
        const key = `${layout}/${format}`
        const previous = best.get(key)
        if (!previous || result.seconds < previous.seconds) best.set(key, result)
      }
    }
    const formats = DATASET_FORMATS.map(({ layout, format, target }) => {
      const { seconds, bytes } = best.get(`${layout}/${format}`)!
      const readingsPerSecond = options.readings / seconds
      return { layout, format, seconds, bytes, readingsPerSecond, ratio: readingsPerSecond / direct!.readingsPerSecond, ...(target !== undefined && { target }) }
    })
    for (const timing of formats) {
      options.say(`  ${timing.layout} ${timing.format}: ${Math.round(timing.readingsPerSecond).toLocaleString('en')} readings/s ` +
        `(${timing.seconds.toFixed(2)} s, ${(timing.bytes / 1e6).toFixed(1)} MB), ${(timing.ratio * 100).toFixed(0)}% of COPY TO`)
    }
    return { status: 'measured', message: 'ok', ...base, direct, binaryCopy: binary, formats }
  } finally {
    await server.stop()
  }
}

/** The phase's lines of the report. */
export function formatDatasetExport (result: DatasetExportResult): string {
  if (result.status !== 'measured' || !result.direct) return `Dataset export: ${result.status}: ${result.message}`
  const int = (value: number) => Math.round(value).toLocaleString('en')
  return `Dataset export of the same ${int(result.readings)}-reading session (GET /datasets/export, one zip, 50 Hz grid) vs COPY (select ...) TO STDOUT ` +
    `${int(result.direct.readingsPerSecond)} readings/s: ` +
    result.formats.map(timing => `${timing.layout} ${timing.format} ${int(timing.readingsPerSecond)} readings/s (${(timing.ratio * 100).toFixed(0)}%, ${(timing.bytes / 1e6).toFixed(1)} MB)`).join(', ') + '.' +
    (result.binaryCopy ? ` Binary COPY of the raw columns, what the grid reads: ${int(result.binaryCopy.readingsPerSecond)} readings/s.` : '')
}

/** The phase's targets: each format that has a goal against COPY TO. */
export function datasetExportTargets (result: DatasetExportResult | undefined): Array<{ name: string, goal: string, value: string, met: boolean | undefined }> {
  return DATASET_FORMATS.filter(format => format.target !== undefined).map(({ layout, format, target }) => {
    const timing = result?.formats.find(candidate => candidate.layout === layout && candidate.format === format)
    return {
      name: `dataset export, ${layout} ${format}`,
      goal: `>= ${(target! * 100).toFixed(0)}% of COPY TO`,
      value: timing ? `${(timing.ratio * 100).toFixed(0)}%` : result ? result.status : 'not measured',
      met: timing ? timing.ratio >= target! : undefined
    }
  })
}
