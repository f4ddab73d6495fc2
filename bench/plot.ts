import { get, type IncomingMessage } from 'node:http'
import type { TransferTiming } from './export.js'

/** Buckets the web page asks for: about a plot's width in pixels. */
export const PLOT_BUCKETS = 1200

export interface PlotTiming {
  milliseconds: number
  bytes: number
}

export interface PlotResult {
  status: 'measured' | 'failed'
  message: string
  readings: number
  buckets: number
  /** The first GET /sessions/:id/readings/summary of the session: what opening its page waits for. */
  first?: PlotTiming
  /** The best of the repeats (rows in the cache, as on a second look). */
  best?: PlotTiming
  /** Reading the session's rows once (COPY of the raw columns, as the export phase measured it). */
  rowsOnceMs?: number
  /** rowsOnceMs over the first summary: how many times faster a plot is than reading the rows. */
  ratio?: number
}

export interface PlotOptions {
  baseUrl: string
  token: string
  sessionId: number
  readings: number
  repeats: number
  /** The raw COPY of the same session, from the export phase. */
  rowsOnce?: TransferTiming
}

async function summary (baseUrl: string, sessionId: number, token: string, readings: number): Promise<PlotTiming | { status: number, body: string }> {
  const started = performance.now()
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    get(`${baseUrl}/sessions/${sessionId}/readings/summary?buckets=${PLOT_BUCKETS}`, { headers: { authorization: `Bearer ${token}` } }, resolve)
      .once('error', reject)
  })
  let body = ''
  for await (const chunk of response) body += String(chunk)
  if (response.statusCode !== 200) return { status: response.statusCode ?? 0, body }
  const parsed = JSON.parse(body) as { sensors: Array<{ readings: number }> }
  const counted = parsed.sensors.reduce((sum, sensor) => sum + sensor.readings, 0)
  if (counted !== readings) return { status: 200, body: `the summary counted ${counted} readings, the session has ${readings}` }
  return { milliseconds: performance.now() - started, bytes: Buffer.byteLength(body) }
}

/**
 * Time to first plot of a large session: the summary the web page asks for
 * when it opens the session (min/max per bucket and sensor, one SQL pass)
 * against reading the session's rows once.
 */
export async function runPlotPhase (options: PlotOptions): Promise<PlotResult> {
  const base = { readings: options.readings, buckets: PLOT_BUCKETS }
  const first = await summary(options.baseUrl, options.sessionId, options.token, options.readings)
  if ('status' in first) return { status: 'failed', message: `the summary answered ${first.status}: ${first.body.slice(0, 200)}`, ...base }
  let best = first
  for (let run = 1; run < Math.max(1, options.repeats); run++) {
    const next = await summary(options.baseUrl, options.sessionId, options.token, options.readings)
    if ('status' in next) return { status: 'failed', message: `the summary answered ${next.status}: ${next.body.slice(0, 200)}`, ...base, first }
    if (next.milliseconds < best.milliseconds) best = next
  }
  const rowsOnceMs = options.rowsOnce ? options.rowsOnce.seconds * 1000 : undefined
  return {
    status: 'measured',
    message: 'ok',
    ...base,
    first,
    best,
    rowsOnceMs,
    ratio: rowsOnceMs === undefined ? undefined : rowsOnceMs / first.milliseconds
  }
}
