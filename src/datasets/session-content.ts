import type { Readable } from 'node:stream'
import { encodeWideCsv, encodeWindowsCsv, TimestampFormatter, WIDE_CSV_COLUMNS, windowsColumns } from './csv-encoding.js'
import { GridInterpolator, type GridSegment, type WideBatch } from './grid.js'
import type { LabelCursor } from './label-cursor.js'
import type { ReadingsChunk } from './readings-chunk.js'
import type { SessionGridFacts } from './session-grid.js'
import { WindowCutter, type WindowCounts, type WindowOptions } from './windows.js'

export const DATASET_LAYOUTS = ['long', 'wide', 'windows'] as const
export type DatasetLayout = typeof DATASET_LAYOUTS[number]
export const DATASET_FORMATS = ['csv', 'parquet'] as const
export type DatasetFormat = typeof DATASET_FORMATS[number]

/** Where a session's readings come from (DatasetConnection in production). */
export interface ReadingsSource {
  longCsv: (sessionId: number) => Promise<Readable>
  /** `time`: ordered by timestamp only; `total`: the long CSV's order (timestamp, sensor, x, y, z). */
  readings: (sessionId: number, order: 'time' | 'total') => AsyncIterable<ReadingsChunk>
}

export interface SessionContentOptions {
  layout: DatasetLayout
  format: DatasetFormat
  sessionId: number
  /** The grid's rate (wide and windows). */
  rateHz: number
  window: WindowOptions
  facts: SessionGridFacts
  labels: LabelCursor
  /** Names the writer in Parquet files. */
  createdBy: string
  /** Told of every piece of readings read, for a progress bar. */
  onReadings?: (count: number) => void
}

/** What a session's file turned out to hold, filled in as it is read. */
export interface SessionContentStats {
  /** Rows of the file: readings (long), grid instants (wide), windows (windows). */
  rows: number
  readings: number
  segments?: { count: number, listed: readonly GridSegment[] }
  windows?: WindowCounts
}

/** Rows per Arrow batch (one IPC round into the Parquet writer) and per slice of CSV work between two reads. */
const WIDE_BATCH_ROWS = 8192
const LONG_BATCH_READINGS = 16_384
const WINDOWS_PER_BATCH = 64
/** CSV text is handed on in pieces of about this many characters. */
const CSV_PIECE = 1 << 16

/**
 * One session's file of the dataset in the asked layout and format, as a
 * stream of bytes pulled from the database as it is read: memory holds a
 * batch of rows (and for Parquet a row group), whatever the session's size.
 */
export function sessionContent (source: ReadingsSource, options: SessionContentOptions): { bytes: AsyncIterable<Buffer>, stats: SessionContentStats } {
  const stats: SessionContentStats = { rows: 0, readings: 0 }
  const counted = (order: 'time' | 'total') => countReadings(source.readings(options.sessionId, order), stats, options.onReadings)
  const bytes = (async function * (): AsyncGenerator<Buffer> {
    const { layout, format } = options
    if (layout === 'long' && format === 'csv') {
      yield * longCsv(await source.longCsv(options.sessionId), stats, options.onReadings)
      return
    }
    if (layout === 'long') {
      const parquet = await parquetModule()
      const batches = mapAsync(rebatch(counted('total'), LONG_BATCH_READINGS), chunk => {
        stats.rows += chunk.length
        return parquet.longRecordBatch(chunk, options.sessionId, options.labels)
      })
      const empty = parquet.emptyBatches.long(options.sessionId, options.labels)
      yield * buffers(parquet.parquetFile(batches, parquetOptions(options, parquet.ROW_GROUP_ROWS.long, empty)))
      return
    }
    const missing = options.facts.sensors.map(present => !present)
    const rows = wideBatches(counted('time'), options, stats)
    if (layout === 'wide') {
      if (format === 'csv') {
        const timestamps = new TimestampFormatter()
        yield * csvPieces(WIDE_CSV_COLUMNS.join(','), mapAsync(rows, batch => encodeWideCsv(batch, options.sessionId, timestamps)))
        return
      }
      const parquet = await parquetModule()
      const batches = mapAsync(rows, batch => parquet.wideRecordBatch(batch, options.sessionId, missing))
      const empty = parquet.emptyBatches.wide(options.sessionId, missing, options.labels.dictionary)
      yield * buffers(parquet.parquetFile(batches, parquetOptions(options, parquet.ROW_GROUP_ROWS.wide, empty)))
      return
    }
    const { samples } = options.window
    const windows = windowBatches(rows, options.window, stats)
    if (format === 'csv') {
      const timestamps = new TimestampFormatter()
      yield * csvPieces(windowsColumns(samples).join(','), mapAsync(windows, batch => encodeWindowsCsv(batch, options.sessionId, samples, timestamps)))
      return
    }
    const parquet = await parquetModule()
    const batches = mapAsync(windows, batch => parquet.windowsRecordBatch(batch, options.sessionId, samples, missing))
    const empty = parquet.emptyBatches.windows(options.sessionId, samples, missing, options.labels.dictionary)
    yield * buffers(parquet.parquetFile(batches, parquetOptions(options, parquet.ROW_GROUP_ROWS.windows, empty)))
  })()
  return { bytes, stats }
}

// Loaded on first use: apache-arrow and the WebAssembly writer take about a quarter of a second and
// tens of MB to load, which a service that never writes Parquet should not pay at start.
const parquetModule = () => import('./parquet-encoding.js')

function parquetOptions<T> (options: SessionContentOptions, rowGroupRows: number, empty: T) {
  const metadata: Record<string, string> = { 'motion_ingest.session_id': String(options.sessionId), 'motion_ingest.layout': options.layout }
  if (options.layout !== 'long') metadata['motion_ingest.rate_hz'] = String(options.rateHz)
  if (options.layout === 'windows') metadata['motion_ingest.window_samples'] = String(options.window.samples)
  return { rowGroupRows, createdBy: options.createdBy, metadata, empty }
}

async function * countReadings (chunks: AsyncIterable<ReadingsChunk>, stats: SessionContentStats, onReadings?: (count: number) => void): AsyncGenerator<ReadingsChunk> {
  for await (const chunk of chunks) {
    stats.readings += chunk.length
    onReadings?.(chunk.length)
    yield chunk
  }
}

async function * wideBatches (chunks: AsyncIterable<ReadingsChunk>, options: SessionContentOptions, stats: SessionContentStats): AsyncGenerator<WideBatch> {
  const grid = new GridInterpolator({
    rateHz: options.rateHz,
    sensors: options.facts.sensors,
    gapThresholdUs: options.facts.gapThresholdUs,
    labels: options.labels,
    batchRows: options.layout === 'wide' ? WIDE_BATCH_ROWS : 1024
  })
  const done = (batches: WideBatch[]) => {
    stats.rows = grid.rows
    stats.segments = grid.segments
    return batches
  }
  for await (const chunk of chunks) yield * done(grid.push(chunk))
  yield * done(grid.finish())
}

async function * windowBatches (rows: AsyncIterable<WideBatch>, options: WindowOptions, stats: SessionContentStats) {
  const cutter = new WindowCutter({ ...options, batchWindows: WINDOWS_PER_BATCH })
  stats.windows = cutter.counts
  for await (const batch of rows) {
    const windows = cutter.push(batch)
    stats.rows = cutter.counts.kept
    yield * windows
  }
  yield * cutter.finish()
  stats.rows = cutter.counts.kept
}

/** Joins small chunks into runs of at least `size` readings (fewer Arrow batches, each a round into WebAssembly). */
async function * rebatch (chunks: AsyncIterable<ReadingsChunk>, size: number): AsyncGenerator<ReadingsChunk> {
  let parts: ReadingsChunk[] = []
  let count = 0
  const joined = (): ReadingsChunk => {
    const out: ReadingsChunk = { length: count, ts: new Float64Array(count), sensor: new Uint8Array(count), x: new Float64Array(count), y: new Float64Array(count), z: new Float64Array(count) }
    let at = 0
    for (const part of parts) {
      const n = part.length
      out.ts.set(part.ts.subarray(0, n), at)
      out.sensor.set(part.sensor.subarray(0, n), at)
      out.x.set(part.x.subarray(0, n), at)
      out.y.set(part.y.subarray(0, n), at)
      out.z.set(part.z.subarray(0, n), at)
      at += n
    }
    parts = []
    count = 0
    return out
  }
  for await (const chunk of chunks) {
    parts.push(chunk)
    count += chunk.length
    if (count >= size) yield joined()
  }
  if (count > 0) yield joined()
}

async function * mapAsync<T, U> (items: AsyncIterable<T>, map: (item: T) => U): AsyncGenerator<U> {
  for await (const item of items) yield map(item)
}

async function * buffers (pieces: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  for await (const piece of pieces) yield Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength)
}

async function * csvPieces (header: string, texts: AsyncIterable<string>): AsyncGenerator<Buffer> {
  let text = header + '\n'
  for await (const piece of texts) {
    text += piece
    if (text.length >= CSV_PIECE) {
      yield Buffer.from(text)
      text = ''
    }
  }
  if (text.length > 0) yield Buffer.from(text)
}

/** The long CSV as the database writes it, its readings counted by line. */
async function * longCsv (csv: Readable, stats: SessionContentStats, onReadings?: (count: number) => void): AsyncGenerator<Buffer> {
  let header = true
  for await (const piece of csv as AsyncIterable<Buffer>) {
    let lines = 0
    for (let i = piece.indexOf(10); i !== -1; i = piece.indexOf(10, i + 1)) lines++
    if (header && lines > 0) {
      header = false
      lines--
    }
    stats.rows += lines
    stats.readings += lines
    if (lines > 0) onReadings?.(lines)
    yield piece
  }
}
