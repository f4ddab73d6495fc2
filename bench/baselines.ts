import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import { BinaryRowWriter, binaryHeader, binaryTrailer, COPY_READINGS_BINARY } from './binary-copy.js'
import { READINGS_PER_BATCH, ReadingSource } from './readings.js'

/**
 * Which readings a baseline writes: `batches` batches of 375 readings dealt
 * round-robin to `sessions` recordings, as the phones of a service phase
 * send them (many sessions interleaved in time).
 */
export interface RowPlan {
  sessions: number
  batches: number
  /** Session ids firstSessionId .. firstSessionId + sessions - 1; far from real ones. */
  firstSessionId: number
  startMs: number
}

export interface PlannedBatch {
  sessionId: number
  source: ReadingSource
  batch: number
}

export interface BaselineResult {
  name: 'copy' | 'insert'
  rows: number
  seconds: number
  readingsPerSecond: number
}

export const planRows = (plan: RowPlan) => plan.batches * READINGS_PER_BATCH

/**
 * The order rows reach the table: `arrival` interleaves the sessions batch by
 * batch, as phones' batches reach the service; `session` writes each
 * session's batches together, in time order (the same rows).
 */
export type RowOrder = 'arrival' | 'session'

export function * plannedBatches (plan: RowPlan, order: RowOrder = 'arrival'): Generator<PlannedBatch> {
  const sessions = Math.max(1, plan.sessions)
  const sources = Array.from({ length: sessions }, (_, i) => new ReadingSource({ startMs: plan.startMs, seed: i * 37 }))
  const batchOf = (k: number) => ({ sessionId: plan.firstSessionId + (k % sessions), source: sources[k % sessions]!, batch: Math.floor(k / sessions) })
  if (order === 'arrival') {
    for (let k = 0; k < plan.batches; k++) yield batchOf(k)
    return
  }
  for (let i = 0; i < sessions; i++) {
    for (let k = i; k < plan.batches; k += sessions) yield batchOf(k)
  }
}

/** Binary COPY chunks (header first, trailer last) of the plan's rows, `batchesPerChunk` batches at a time. */
export function * binaryCopyChunks (plan: RowPlan, batchesPerChunk = 64, order: RowOrder = 'arrival'): Generator<Buffer> {
  yield binaryHeader()
  let writer = BinaryRowWriter.forRows(batchesPerChunk * READINGS_PER_BATCH)
  let inChunk = 0
  for (const { sessionId, source, batch } of plannedBatches(plan, order)) {
    source.forEachRow(batch, (ms, sensor, x, y, z) => writer.row(sessionId, ms, sensor, x, y, z))
    if (++inChunk === batchesPerChunk) {
      yield writer.bytes()
      writer = BinaryRowWriter.forRows(batchesPerChunk * READINGS_PER_BATCH)
      inChunk = 0
    }
  }
  if (inChunk > 0) yield writer.bytes()
  yield binaryTrailer()
}

/** Writes the plan with one binary COPY through one client: the database's own limit. */
export async function copyBaseline (pool: pg.Pool, plan: RowPlan, order: RowOrder = 'arrival'): Promise<BaselineResult> {
  const client = await pool.connect()
  let broken = false
  try {
    const started = performance.now()
    const stream = client.query(copyFrom(COPY_READINGS_BINARY))
    await pipeline(Readable.from(binaryCopyChunks(plan, 64, order), { objectMode: false }), stream)
    const seconds = (performance.now() - started) / 1000
    const rows = stream.rowCount
    return { name: 'copy', rows, seconds, readingsPerSecond: rows / seconds }
  } catch (err) {
    broken = true
    throw err
  } finally {
    client.release(broken)
  }
}

export function multiRowInsertSql (rows: number): string {
  const tuples: string[] = []
  for (let r = 0; r < rows; r++) {
    const p = r * 6
    tuples.push(`($${p + 1},$${p + 2},$${p + 3},$${p + 4},$${p + 5},$${p + 6})`)
  }
  return `insert into readings (session_id, ts, sensor, x, y, z) values ${tuples.join(',')}`
}

/** Writes the plan as one 375-row parameterised INSERT per batch through one client: the naive way. */
export async function insertBaseline (pool: pg.Pool, plan: RowPlan): Promise<BaselineResult> {
  const sql = multiRowInsertSql(READINGS_PER_BATCH)
  const client = await pool.connect()
  try {
    let rows = 0
    const started = performance.now()
    for (const { sessionId, source, batch } of plannedBatches(plan)) {
      const values: unknown[] = []
      source.forEachRow(batch, (ms, sensor, x, y, z) => { values.push(sessionId, new Date(ms), sensor, x, y, z) })
      const result = await client.query(sql, values)
      rows += result.rowCount ?? 0
    }
    const seconds = (performance.now() - started) / 1000
    return { name: 'insert', rows, seconds, readingsPerSecond: rows / seconds }
  } finally {
    client.release()
  }
}
