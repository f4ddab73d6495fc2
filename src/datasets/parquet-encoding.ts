import * as arrow from 'apache-arrow'
import * as parquetWasm from 'parquet-wasm/node'
import { SENSORS } from '../schemas/sensors.js'
import type { WideBatch } from './grid.js'
import type { LabelCursor } from './label-cursor.js'
import { CHANNELS, CHANNEL_COUNT, type ReadingsChunk } from './readings-chunk.js'
import type { WindowBatch } from './windows.js'

/**
 * Parquet files of the three layouts, written by parquet-wasm (the Rust
 * arrow-rs Parquet writer compiled to WebAssembly) from Arrow record batches
 * built here with apache-arrow: zstd-compressed, typed columns (doubles as
 * DOUBLE, so every value is exact; times as TIMESTAMP(MICROS, UTC); labels
 * and sensor names dictionary-encoded strings, read as categoricals). The
 * file is streamed: a row group is written out once it holds `rowGroupRows`
 * rows, so memory holds one row group whatever the session's size.
 *
 * Every file of a layout has the same schema (channels of a sensor a
 * session lacks are null), so that a folder of them reads as one table.
 */

const timestampType = () => new arrow.TimestampMicrosecond('UTC')
const labelType = () => new arrow.Dictionary(new arrow.Utf8(), new arrow.Int32())

/** Parquet writer settings per layout: row groups of a few MB before compression. */
export const ROW_GROUP_ROWS = { long: 131_072, wide: 65_536, windows: 1024 } as const

function timestamps (micros: Float64Array, length: number): arrow.Data<arrow.TimestampMicrosecond> {
  const data = new BigInt64Array(length)
  for (let i = 0; i < length; i++) data[i] = BigInt(micros[i] as number)
  return arrow.makeData({ type: timestampType(), length, data })
}

function doubles (values: Float64Array, length: number, missing: boolean): arrow.Data<arrow.Float64> {
  if (!missing) return arrow.makeData({ type: new arrow.Float64(), length, data: values.subarray(0, length) })
  return arrow.makeData({ type: new arrow.Float64(), length, nullCount: length, nullBitmap: new Uint8Array((length + 7) >> 3), data: new Float64Array(length) })
}

function constant (value: number, length: number): arrow.Data<arrow.Int64> {
  return arrow.makeData({ type: new arrow.Int64(), length, data: new BigInt64Array(length).fill(BigInt(value)) })
}

const labelDictionaries = new WeakMap<readonly string[], arrow.Vector<arrow.Utf8>>()

/** Dictionary-encoded labels; index -1 is null. */
function labelColumn (indices: Int32Array, length: number, dictionary: readonly string[]): arrow.Data<arrow.Dictionary<arrow.Utf8, arrow.Int32>> {
  let values = labelDictionaries.get(dictionary)
  if (!values) {
    values = arrow.vectorFromArray([...dictionary], new arrow.Utf8())
    labelDictionaries.set(dictionary, values)
  }
  const keys = new Int32Array(length)
  const valid = new Uint8Array((length + 7) >> 3)
  let nulls = 0
  for (let i = 0; i < length; i++) {
    const index = indices[i] as number
    if (index === -1) {
      nulls++
      continue
    }
    keys[i] = index
    valid[i >> 3] = (valid[i >> 3] as number) | (1 << (i & 7))
  }
  return arrow.makeData({ type: labelType(), length, nullCount: nulls, nullBitmap: nulls > 0 ? valid : null, data: keys, dictionary: values })
}

function recordBatch (columns: Array<[name: string, data: arrow.Data, nullable: boolean]>, length: number): arrow.RecordBatch {
  const fields = columns.map(([name, data, nullable]) => new arrow.Field(name, data.type, nullable))
  const struct = arrow.makeData({ type: new arrow.Struct(fields), length, children: columns.map(([, data]) => data) })
  return new arrow.RecordBatch(new arrow.Schema(fields), struct)
}

/** The long layout: timestamp, sensor, x, y, z as the CSV has them, and the reading's session and label. */
export function longRecordBatch (chunk: ReadingsChunk, sessionId: number, labels: LabelCursor): arrow.RecordBatch {
  const { length } = chunk
  const label = new Int32Array(length)
  for (let i = 0; i < length; i++) label[i] = labels.indexAt(chunk.ts[i] as number)
  return recordBatch([
    ['timestamp', timestamps(chunk.ts, length), false],
    ['sensor', sensorColumn(chunk.sensor, length), false],
    ['x', doubles(chunk.x, length, false), false],
    ['y', doubles(chunk.y, length, false), false],
    ['z', doubles(chunk.z, length, false), false],
    ['session_id', constant(sessionId, length), false],
    ['label', labelColumn(label, length, labels.dictionary), true]
  ], length)
}

const sensorNames = () => arrow.vectorFromArray([...SENSORS], new arrow.Utf8())

function sensorColumn (codes: Uint8Array, length: number): arrow.Data<arrow.Dictionary<arrow.Utf8, arrow.Int8>> {
  return arrow.makeData({ type: new arrow.Dictionary(new arrow.Utf8(), new arrow.Int8()), length, data: new Int8Array(codes.buffer, codes.byteOffset, length), dictionary: sensorNames() })
}

/** The wide layout; `missing` per sensor code: the session lacks it, so its three channels are null. */
export function wideRecordBatch (batch: WideBatch, sessionId: number, missing: readonly boolean[]): arrow.RecordBatch {
  const { length } = batch
  return recordBatch([
    ['timestamp', timestamps(batch.ts, length), false],
    ...CHANNELS.map((name, c): [string, arrow.Data, boolean] => [name, doubles(batch.values[c] as Float64Array, length, missing[Math.floor(c / 3)] ?? true), true]),
    ['label', labelColumn(batch.label, length, batch.labels), true],
    ['session_id', constant(sessionId, length), false],
    ['segment', arrow.makeData({ type: new arrow.Int32(), length, data: batch.segment.subarray(0, length) }), false]
  ], length)
}

/** The windows layout: one row per window, `samples` columns per channel. */
export function windowsRecordBatch (batch: WindowBatch, sessionId: number, samples: number, missing: readonly boolean[]): arrow.RecordBatch {
  const { length } = batch
  const channels: Array<[string, arrow.Data, boolean]> = []
  for (let c = 0; c < CHANNEL_COUNT; c++) {
    const absent = missing[Math.floor(c / 3)] ?? true
    const values = batch.values[c] as Float64Array
    for (let i = 0; i < samples; i++) {
      const column = new Float64Array(length)
      for (let w = 0; w < length; w++) column[w] = values[w * samples + i] as number
      channels.push([`${CHANNELS[c]}_${i}`, doubles(column, length, absent), true])
    }
  }
  return recordBatch([
    ['window', arrow.makeData({ type: new arrow.Int32(), length, data: batch.index.subarray(0, length) }), false],
    ['session_id', constant(sessionId, length), false],
    ['segment', arrow.makeData({ type: new arrow.Int32(), length, data: batch.segment.subarray(0, length) }), false],
    ['start', timestamps(batch.startUs, length), false],
    ['end', timestamps(batch.endUs, length), false],
    ['label', labelColumn(batch.label, length, batch.labels), true],
    ['purity', doubles(batch.purity, length, false), false],
    ...channels
  ], length)
}

const none = () => new Float64Array(0)

/** Batches of no rows with each layout's schema. */
export const emptyBatches = {
  long: (sessionId: number, labels: LabelCursor) =>
    longRecordBatch({ length: 0, ts: none(), sensor: new Uint8Array(0), x: none(), y: none(), z: none() }, sessionId, labels),
  wide: (sessionId: number, missing: readonly boolean[], labels: readonly string[]) =>
    wideRecordBatch({ length: 0, ts: none(), values: CHANNELS.map(none), label: new Int32Array(0), segment: new Int32Array(0), labels }, sessionId, missing),
  windows: (sessionId: number, samples: number, missing: readonly boolean[], labels: readonly string[]) => windowsRecordBatch({
    length: 0,
    index: new Int32Array(0),
    segment: new Int32Array(0),
    startUs: none(),
    endUs: none(),
    label: new Int32Array(0),
    purity: none(),
    values: CHANNELS.map(none),
    labels
  }, sessionId, samples, missing)
}

export interface ParquetFileOptions {
  rowGroupRows: number
  createdBy: string
  /** Key-value metadata of the file (the session, the layout, the rate). */
  metadata: Record<string, string>
  /** A batch of no rows with the file's schema: what an empty file holds. */
  empty: arrow.RecordBatch
}

/**
 * Writer settings from the schema. Dictionary encoding only for the string
 * columns: tried on doubles (arrow-rs does by default) it found nothing to
 * share and made writing 3.5 times slower. Doubles are BYTE_STREAM_SPLIT
 * (Parquet 2.8, read by pyarrow, polars, DuckDB and hyparquet): their
 * exponent bytes line up for zstd, measured twice as fast to write and a
 * fifth smaller than PLAIN on interpolated sines.
 */
function writerProperties (schema: arrow.Schema, options: ParquetFileOptions): parquetWasm.WriterProperties {
  let builder = new parquetWasm.WriterPropertiesBuilder()
    .setCompression(parquetWasm.Compression.ZSTD)
    .setDictionaryEnabled(false)
    .setMaxRowGroupSize(options.rowGroupRows)
    .setCreatedBy(options.createdBy)
    .setKeyValueMetadata(new Map(Object.entries(options.metadata)))
  for (const field of schema.fields) {
    if (arrow.DataType.isDictionary(field.type)) builder = builder.setColumnDictionaryEnabled(field.name, true)
    if (arrow.DataType.isFloat(field.type)) builder = builder.setColumnEncoding(field.name, parquetWasm.Encoding.BYTE_STREAM_SPLIT)
  }
  return builder.build()
}

const toWasm = (batch: arrow.RecordBatch) => parquetWasm.Table.fromIPCStream(arrow.tableToIPC(new arrow.Table([batch]), 'stream'))

/**
 * Streams the Parquet file of `batches`: each Arrow batch goes to the
 * writer through the Arrow IPC format (the way into parquet-wasm's memory),
 * and the writer's output comes back in pieces as row groups are written.
 * Batches are pulled only as fast as the output is read.
 */
export async function * parquetFile (batches: AsyncIterable<arrow.RecordBatch>, options: ParquetFileOptions): AsyncGenerator<Uint8Array> {
  const source = batches[Symbol.asyncIterator]()
  let first = true
  const input = new ReadableStream({
    async pull (controller) {
      const next = await source.next()
      if (next.done) {
        // A file of no rows still has its schema.
        if (first) {
          const table = toWasm(options.empty)
          for (const batch of table.recordBatches()) controller.enqueue(batch)
          table.free()
        }
        controller.close()
        return
      }
      first = false
      const table = toWasm(next.value)
      try {
        for (const batch of table.recordBatches()) controller.enqueue(batch)
      } finally {
        table.free()
      }
    }
  })
  const output = await parquetWasm.transformParquetStream(input, writerProperties(options.empty.schema, options))
  const reader = output.getReader()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      yield value as Uint8Array
    }
  } finally {
    reader.releaseLock()
    // An early end (the download went away) stops the readings behind the batches too.
    await source.return?.()
  }
}
