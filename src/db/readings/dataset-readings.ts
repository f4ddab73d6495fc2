import type { Readable } from 'node:stream'
import { to as copyTo } from 'pg-copy-streams'
import { silentLog, type Log } from '../../logger.js'
import type { ClientSource, PoolClient } from '../pool.js'
import { EXACT_FLOAT_OUTPUT_SQL, READING_ORDER_SQL, SENSOR_NAME_SQL, TIMESTAMP_SQL } from './readings-sql.js'

/**
 * A run of a session's readings in time order, one typed array per column,
 * as the database streams them: what every dataset layout is computed from,
 * without an object per reading.
 */
export interface ReadingsChunk {
  length: number
  /** Microseconds since the epoch (exact in a double until the year 2255). */
  ts: Float64Array
  /** The sensor's code: its index in SENSORS. */
  sensor: Uint8Array
  x: Float64Array
  y: Float64Array
  z: Float64Array
}

/** COPY takes no bind parameters; the id is inlined, so it must be a plain integer. */
function sessionIdSql (sessionId: number): number {
  if (!Number.isSafeInteger(sessionId) || sessionId < 1) throw new TypeError(`Invalid session id ${sessionId}`)
  return sessionId
}

/** The long layout's CSV: the very statement GET /sessions/:id/readings.csv runs (readings-export.ts), so the bytes are the same. */
const longCsvSql = (sessionId: number) => `copy (
    select ${TIMESTAMP_SQL} as timestamp, ${SENSOR_NAME_SQL} as sensor, x, y, z
    from readings where session_id = ${sessionIdSql(sessionId)}
    order by ${READING_ORDER_SQL}
  ) to stdout with (format csv, header)`

/**
 * A session's readings in PostgreSQL's binary COPY format: no text to
 * format or parse, about twice as fast as the CSV. `time` order is the
 * (session_id, ts) index's own, without a sort; ties between readings of
 * one timestamp come in any order, which the grid does not depend on.
 * `total` order is the CSV's, for the long layout's Parquet rows.
 */
const binarySql = (sessionId: number, order: ReadingOrder) => `copy (
    select ts, sensor, x, y, z from readings where session_id = ${sessionIdSql(sessionId)}
    order by ${order === 'time' ? 'ts' : READING_ORDER_SQL}
  ) to stdout with (format binary)`

export type ReadingOrder = 'time' | 'total'

/** PostgreSQL's epoch (2000-01-01) in microseconds since the Unix epoch. */
const POSTGRES_EPOCH_US = 946_684_800_000_000
/** The binary COPY header: signature, flags, header extension length. */
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1')
/** One tuple: field count (2), then length (4) and value for ts (8), sensor (2), x, y, z (8 each). */
const TUPLE_BYTES = 2 + 4 + 8 + 4 + 2 + 3 * (4 + 8)

/**
 * Parses a binary COPY of (ts, sensor, x, y, z) into columnar chunks, one
 * per piece the connection delivers: no object per reading.
 */
export async function * parseReadingsCopy (pieces: AsyncIterable<Buffer>): AsyncGenerator<ReadingsChunk> {
  let pending: Buffer = Buffer.alloc(0)
  let headerRead = false
  let ended = false
  for await (const piece of pieces) {
    let buffer = pending.length > 0 ? Buffer.concat([pending, piece]) : piece
    let at = 0
    if (!headerRead) {
      if (buffer.length < SIGNATURE.length + 8) {
        pending = buffer
        continue
      }
      if (!buffer.subarray(0, SIGNATURE.length).equals(SIGNATURE)) throw new Error('Not a binary COPY stream')
      const extension = buffer.readUInt32BE(SIGNATURE.length + 4)
      if (buffer.length < SIGNATURE.length + 8 + extension) {
        pending = buffer
        continue
      }
      at = SIGNATURE.length + 8 + extension
      headerRead = true
    }
    const count = Math.floor((buffer.length - at) / TUPLE_BYTES)
    const chunk: ReadingsChunk = {
      length: 0,
      ts: new Float64Array(count),
      sensor: new Uint8Array(count),
      x: new Float64Array(count),
      y: new Float64Array(count),
      z: new Float64Array(count)
    }
    const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.length)
    let n = 0
    while (buffer.length - at >= 2) {
      const fields = view.getInt16(at)
      if (fields === -1) {
        ended = true
        at += 2
        break
      }
      if (buffer.length - at < TUPLE_BYTES) break
      if (fields !== 5 || view.getInt32(at + 2) !== 8 || view.getInt32(at + 14) !== 2 || view.getInt32(at + 20) !== 8 ||
        view.getInt32(at + 32) !== 8 || view.getInt32(at + 44) !== 8) {
        throw new Error('Unexpected tuple in the readings COPY')
      }
      // int64 microseconds since 2000-01-01: exact in a double as the high and low words.
      chunk.ts[n] = view.getInt32(at + 6) * 4294967296 + view.getUint32(at + 10) + POSTGRES_EPOCH_US
      chunk.sensor[n] = view.getInt16(at + 18)
      chunk.x[n] = view.getFloat64(at + 24)
      chunk.y[n] = view.getFloat64(at + 36)
      chunk.z[n] = view.getFloat64(at + 48)
      n++
      at += TUPLE_BYTES
    }
    chunk.length = n
    buffer = buffer.subarray(at)
    pending = ended ? Buffer.alloc(0) : Buffer.from(buffer)
    if (n > 0) yield chunk
  }
  if (!ended) throw new Error('The readings COPY ended before its trailer')
}

/**
 * The one connection a dataset export reads every session on, one after
 * another, each in a read-only transaction of its own (a snapshot held for
 * the whole export would keep vacuum from cleaning up meanwhile). Holding
 * one connection from start to end means the export cannot fail halfway for
 * want of one, and takes one of the export pool's connections however many
 * sessions it has.
 *
 * A COPY stopped before its end (the download went away, a file write
 * failed) cannot be stopped on the connection: the connection is destroyed,
 * as readings-export.ts does, and the export ends with it.
 */
export class DatasetConnection {
  private released = false
  private broken = false
  private committing: Promise<void> = Promise.resolve()
  private readonly onError: (err: Error) => void

  private constructor (private readonly client: PoolClient, private readonly log: Log) {
    // A checked-out client has no listener of the pool's: a lost connection would be an unhandled
    // 'error' and end the process. The statement in flight then fails and ends the export.
    this.onError = (err: Error) => {
      if (!this.released) this.log.warn({ err }, 'Dataset export lost its database connection.')
      this.broken = true
    }
    client.on('error', this.onError)
  }

  static async open (source: ClientSource, logger: Log = silentLog): Promise<DatasetConnection> {
    return new DatasetConnection(await source.connect(), logger.child({ component: 'dataset-export' }))
  }

  /** The long layout's CSV of one session; read it to its end before the next call. */
  async longCsv (sessionId: number): Promise<Readable> {
    return this.copy(longCsvSql(sessionId), true)
  }

  /** One session's readings in chunks; read them to the end (or stop, which ends the connection) before the next call. */
  async * readings (sessionId: number, order: ReadingOrder): AsyncGenerator<ReadingsChunk> {
    const copy = await this.copy(binarySql(sessionId, order), false)
    try {
      yield * parseReadingsCopy(copy)
    } finally {
      // Stopped early: destroying the stream destroys the connection (its 'close' handler).
      if (!copy.readableEnded) copy.destroy()
    }
  }

  /** Gives the connection back once its last commit is done, or destroys it when it broke or a COPY was cut short. */
  async release (): Promise<void> {
    await this.committing
    this.close()
  }

  /** Ends the connection now, whatever it is doing: the server aborts a COPY at its next write. */
  destroy (): void {
    this.broken = true
    this.close()
  }

  private close (): void {
    if (this.released) return
    this.released = true
    this.client.off('error', this.onError)
    this.client.release(this.broken)
  }

  private async copy (sql: string, exactFloats: boolean): Promise<Readable> {
    await this.committing
    if (this.released) throw new Error('The dataset export connection is closed')
    try {
      await this.client.query('begin read only')
      if (exactFloats) await this.client.query(EXACT_FLOAT_OUTPUT_SQL)
    } catch (err) {
      this.destroy()
      throw err
    }
    const copy = this.client.query(copyTo(sql))
    let ended = false
    copy.once('end', () => {
      ended = true
      // Queued now, during 'end', so that it runs before whatever the reader asks next.
      // It never rejects (nobody may be waiting for it): a failure breaks the connection, which the next COPY reports.
      this.committing = this.client.query('commit').then(() => undefined, (err: unknown) => {
        this.log.warn({ err }, 'Commit after a dataset export COPY failed.')
        this.destroy()
      })
    })
    // Persistent: destroying the client reports the cut COPY as another error on this stream.
    copy.on('error', (err: Error) => {
      if (!this.released) this.log.warn({ err }, 'Dataset export COPY failed.')
      this.destroy()
    })
    copy.once('close', () => {
      if (ended) return
      this.log.debug('Dataset export COPY stopped early; closing its connection.')
      this.destroy()
    })
    return copy
  }
}
