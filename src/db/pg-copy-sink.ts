import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { from as copyFrom } from 'pg-copy-streams'
import { COPY_HEADER, COPY_READINGS_SQL, COPY_TRAILER } from '../ingest/binary-copy.js'
import { batchKey, type BatchSink, type GroupWriteResult, type PendingBatch } from '../ingest/types.js'
import type { Pool, PoolClient } from './pool.js'

/**
 * One statement does the bookkeeping of a whole group: lock the sessions that
 * are still active (id order, so concurrent writers cannot deadlock), record
 * the batches in the ledger (a batch id already there is skipped: that is
 * what makes resending safe; the first receipt's times are the ones kept), and add the new readings to the sessions'
 * running totals. The COPY of exactly the newly recorded batches follows in
 * the same transaction, so ledger, total and readings commit together.
 */
const RECORD_GROUP_SQL = `
with batch as (
  select * from unnest($1::bigint[], $2::int[], $3::int[], $4::float8[], $5::bigint[], $6::bigint[])
    as b(session_id, batch_id, reading_count, received_ms, first_us, last_us)
), live as (
  select id, total_sensor_readings_written as total from sessions
  where id = any($1::bigint[]) and destroyed_at is null and expires_at > clock_timestamp()
  order by id
  for update
), inserted as (
  insert into session_batches (session_id, batch_id, reading_count, received_at, first_reading_at, last_reading_at)
  select b.session_id, b.batch_id, b.reading_count,
    to_timestamp(b.received_ms / 1000),
    -- Integer microseconds times an interval: exact, where float seconds would round.
    timestamptz 'epoch' + b.first_us * interval '1 microsecond',
    timestamptz 'epoch' + b.last_us * interval '1 microsecond'
  from batch b join live on live.id = b.session_id
  on conflict (session_id, batch_id) do nothing
  returning session_id, batch_id, reading_count
), totals as (
  update sessions s set total_sensor_readings_written = s.total_sensor_readings_written + i.readings
  from (select session_id, sum(reading_count) as readings from inserted group by session_id) i
  where s.id = i.session_id
  returning s.id
)
select id as session_id, null::int as batch_id, total from live
union all
select session_id, batch_id, null from inserted`

/**
 * Writes batch groups with one dedicated connection: bookkeeping statement,
 * binary COPY of the new rows, COMMIT. A failure rolls everything back and
 * discards the connection, since after a broken COPY its state is unknown.
 */
export class PgCopySink implements BatchSink {
  private client: PoolClient | undefined
  private busy = false

  /** groupTimeoutMs: how long one group may wait for the database before it is failed. */
  constructor (private readonly pool: Pool, private readonly groupTimeoutMs: number) {}

  async writeGroup (batches: readonly PendingBatch[]): Promise<GroupWriteResult> {
    const reused = this.client !== undefined
    try {
      return await this.attempt(batches)
    } catch (err) {
      // A kept connection may have died while idle (database restart, proxy timeout).
      // Retrying is safe even if the first COMMIT landed: the ledger turns the retry into replays.
      // After a timeout the database is not answering: phones hear at once rather than after a retry.
      if (!reused || err instanceof GroupTimeoutError) throw err
      return this.attempt(batches)
    }
  }

  private async attempt (batches: readonly PendingBatch[]): Promise<GroupWriteResult> {
    const client = this.client ?? await this.connect()
    this.busy = true
    // A network partition neither answers nor fails: without this, the group (and every
    // phone's acks behind it) would wait until TCP gives up, minutes later. Destroying the
    // socket fails the transaction, so the phones are told storage_unavailable and resend.
    let timedOut: GroupTimeoutError | undefined
    const watchdog = setTimeout(() => {
      timedOut = new GroupTimeoutError(this.groupTimeoutMs)
      destroySocket(client, timedOut)
    }, this.groupTimeoutMs)
    try {
      await client.query('begin')
      const { rows } = await client.query<{ session_id: number, batch_id: number | null, total: number | null }>(RECORD_GROUP_SQL, [
        batches.map(b => b.sessionId),
        batches.map(b => b.batchId),
        batches.map(b => b.readingCount),
        batches.map(b => b.receivedAtMs),
        batches.map(b => b.firstReadingMicros),
        batches.map(b => b.lastReadingMicros)
      ])
      const totalsBefore = new Map<number, number>()
      const inserted = new Set<string>()
      for (const row of rows) {
        if (row.batch_id === null) totalsBefore.set(row.session_id, row.total as number)
        else inserted.add(batchKey(row.session_id, row.batch_id))
      }
      const fresh = batches.filter(b => inserted.has(batchKey(b.sessionId, b.batchId)))
      if (fresh.length > 0) await copyRows(client, fresh)
      await client.query('commit')
      return { totalsBefore, inserted }
    } catch (err) {
      this.client = undefined
      // The connection may be dead or mid-COPY; do not return it to the pool.
      client.release(err instanceof Error ? err : true)
      throw timedOut ?? err
    } finally {
      clearTimeout(watchdog)
      this.busy = false
    }
  }

  private async connect (): Promise<PoolClient> {
    const client = await this.pool.connect()
    // A checked-out client has no error listener of the pool's, and this one stays checked
    // out between groups: a connection lost while the writer idles (database restart,
    // network cut) would be an unhandled 'error' event and crash the process.
    client.on('error', () => this.discardIdle(client))
    this.client = client
    return client
  }

  /** Drops a kept connection that failed between groups; a failure mid-group is handled by attempt(). */
  private discardIdle (client: PoolClient): void {
    if (this.client !== client || this.busy) return
    this.client = undefined
    client.release(true)
  }

  async close (): Promise<void> {
    this.client?.release()
    this.client = undefined
  }
}

export class GroupTimeoutError extends Error {
  constructor (ms: number) {
    super(`the database did not answer within ${ms} ms`)
    this.name = 'GroupTimeoutError'
  }
}

/**
 * pg's Client.end() waits for the server to acknowledge, which never happens
 * in a partition; destroying its socket is the only way to abort at once.
 */
function destroySocket (client: PoolClient, err: Error): void {
  const { connection } = client as unknown as { connection?: { stream?: { destroy: (err?: Error) => void } } }
  connection?.stream?.destroy(err)
}

async function copyRows (client: PoolClient, batches: readonly PendingBatch[]): Promise<void> {
  function * chunks () {
    yield COPY_HEADER
    for (const batch of batches) yield batch.rows
    yield COPY_TRAILER
  }
  await pipeline(Readable.from(chunks(), { objectMode: false }), client.query(copyFrom(COPY_READINGS_SQL)))
}
