import type { Readable } from 'node:stream'
import { to as copyTo } from 'pg-copy-streams'
import { silentLog, type Log } from '../../logger.js'
import { watchForStall } from '../../stream-stall.js'
import type { ClientSource } from '../pool.js'
import { EXACT_FLOAT_OUTPUT_SQL, READING_ORDER_SQL, SENSOR_NAME_SQL, TIMESTAMP_SQL } from './readings-sql.js'

export const CSV_HEADER = 'timestamp,sensor,x,y,z'

function exportSql (sessionId: number): string {
  // COPY takes no bind parameters; the id is inlined, so it must be a plain integer.
  if (!Number.isSafeInteger(sessionId) || sessionId < 1) throw new TypeError(`Invalid session id ${sessionId}`)
  return `copy (
    select ${TIMESTAMP_SQL} as timestamp, ${SENSOR_NAME_SQL} as sensor, x, y, z
    from readings where session_id = ${sessionId}
    order by ${READING_ORDER_SQL}
  ) to stdout with (format csv, header)`
}

export interface ReadingsCsvOptions {
  logger?: Log
  /**
   * Abort the export when its reader takes nothing for this long, so a
   * download nobody reads cannot hold a database connection for ever.
   * Unset: never (the CLI, writing to a file or a pipe it owns).
   */
  idleTimeoutMs?: number
}

/**
 * Streams one session's readings as CSV (header `timestamp,sensor,x,y,z`)
 * straight from `COPY ... TO STDOUT` on a checked-out client, so memory stays
 * constant whatever the session's size and the consumer's pace sets the pace
 * of the query (backpressure reaches the server through TCP).
 *
 * The client goes back to the pool when the stream ends. If the stream is
 * destroyed before its end (the HTTP client went away, a file write failed,
 * the reader stalled past idleTimeoutMs) or fails (the connection was lost),
 * the client is destroyed instead: pg (8.23) ends a client with a query in
 * flight by destroying its socket, and the server aborts the COPY at its next
 * write. test/read-path/export-stream.test.ts and export-hardening.test.ts
 * guard this.
 */
export async function openReadingsCsv (source: ClientSource, sessionId: number, options: ReadingsCsvOptions = {}): Promise<Readable> {
  const sql = exportSql(sessionId)
  const log = (options.logger ?? silentLog).child({ component: 'readings-export', sessionId })
  const client = await source.connect()
  let released = false
  // A checked-out client has no listener of the pool's: losing the connection mid-export
  // (a terminated backend, a database restart) would be an unhandled 'error' and end the
  // process. pg emits it before failing the COPY, which then ends the stream with an error.
  const onClientError = (err: Error) => {
    if (!released) log.warn({ err }, 'Readings export lost its database connection.')
    release(true)
  }
  client.on('error', onClientError)
  const release = (destroy: boolean) => {
    if (released) return
    released = true
    client.off('error', onClientError)
    client.release(destroy)
  }
  try {
    await client.query('begin read only')
    await client.query(EXACT_FLOAT_OUTPUT_SQL)
  } catch (err) {
    release(true)
    throw err
  }

  const copy = client.query(copyTo(sql))
  let ended = false
  copy.once('end', () => {
    ended = true
    client.query('commit').then(() => {
      log.debug({ rows: copy.rowCount }, 'Readings exported.')
      release(false)
    }, (err: unknown) => {
      log.warn({ err }, 'Commit after a readings export failed.')
      release(true)
    })
  })
  // Persistent, not once: destroying the client reports the terminated COPY as
  // a further error on this stream, which must not become an uncaught exception.
  copy.on('error', (err: Error) => {
    if (!released) log.warn({ err }, 'Readings export failed.')
    release(true)
  })
  copy.once('close', () => {
    if (ended) return
    log.debug('Readings export stopped early; closing its connection.')
    release(true)
  })
  const { idleTimeoutMs } = options
  if (idleTimeoutMs !== undefined) {
    watchForStall(copy, idleTimeoutMs, () => {
      log.warn({ idleTimeoutMs }, 'Readings export aborted: its reader took nothing for the idle timeout.')
      copy.destroy()
    })
  }
  return copy
}
