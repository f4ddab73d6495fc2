import { afterAll, describe, expect, it } from 'vitest'
import { migrate } from '../../src/db/startup/migrate.js'
import { PgCopySink } from '../../src/db/readings/pg-copy-sink.js'
import { createPool } from '../../src/db/pool.js'
import { validateBatch } from '../../src/ingest/batch-validation.js'
import type { PendingBatch } from '../../src/ingest/types.js'
import { silentLog } from '../../src/logger.js'
import { createTestDatabase } from '../helper.js'
import { makeReadings } from '../ws-client.js'

/** The ledger's digests in PostgreSQL: the statement that records a group tells replays from conflicts and counts them. */

const BATCH = 30
const databaseUrl = await createTestDatabase()
const pool = createPool({ connectionString: databaseUrl, max: 3, logger: silentLog })
await migrate(pool, silentLog)
const sink = new PgCopySink(pool, 10_000)
afterAll(async () => {
  await sink.close()
  await pool.end()
})

let users = 0

async function newSession (): Promise<number> {
  const n = ++users
  const { rows: [user] } = await pool.query<{ id: number }>(
    'insert into users (name, email, public_key, role) values ($1, $2, $3, \'BETATESTER\') returning id', [`u${n}`, `u${n}@example.test`, `pk-sink-${n}`])
  const { rows: [session] } = await pool.query<{ id: number }>(
    'insert into sessions (user_id, expires_at) values ($1, now() + interval \'10 minutes\') returning id', [user?.id])
  return session?.id as number
}

/** Batch `batchId` of a session; `seed` picks its readings, so two seeds are two contents. */
function pending (sessionId: number, batchId: number, seed: number): PendingBatch {
  const validation = validateBatch(sessionId, makeReadings(BATCH, Date.UTC(2026, 0, 1) + batchId * 1000, seed), BATCH)
  if (!validation.ok) throw new Error('test readings must be valid')
  const { readingCount, rows, digest, firstReadingMicros, lastReadingMicros } = validation
  return { sessionId, batchId, readingCount, rows, digest, firstReadingMicros, lastReadingMicros, receivedAtMs: Date.now() }
}

async function stored (sessionId: number) {
  const { rows: [row] } = await pool.query<{ total: number, conflicts: number, readings: number, ledger: number, first_x: number | null }>(
    `select total_sensor_readings_written as total, batch_conflicts as conflicts,
       (select count(*)::int from readings where session_id = s.id) as readings,
       (select count(*)::int from session_batches where session_id = s.id) as ledger,
       (select x from readings where session_id = s.id order by ts, sensor limit 1) as first_x
     from sessions s where id = $1`, [sessionId])
  return row
}

describe('PgCopySink and batch digests', () => {
  it('stores a digest of each batch and counts a resend with other readings as a conflict, writing nothing of it', async () => {
    const sessionId = await newSession()
    const first = pending(sessionId, 0, 1)
    expect(await sink.writeGroup([first])).toMatchObject({ inserted: new Set([`${sessionId}:0`]), conflicts: new Set() })
    const { rows: [ledger] } = await pool.query<{ digest: Buffer }>('select digest from session_batches where session_id = $1', [sessionId])
    expect(ledger?.digest).toEqual(first.digest)

    const result = await sink.writeGroup([pending(sessionId, 0, 1), pending(sessionId, 0, 2), pending(sessionId, 1, 1)])
    expect(result.totalsBefore.get(sessionId)).toBe(BATCH)
    expect(result.inserted).toEqual(new Set([`${sessionId}:1`]))
    expect(result.conflicts).toEqual(new Set([1]))
    expect(await stored(sessionId)).toEqual({ total: 2 * BATCH, conflicts: 1, readings: 2 * BATCH, ledger: 2, first_x: first.rows.readDoubleBE(2 + 12 + 12 + 6 + 4) })
  })

  it('writes the first of two copies in one group and counts the other as a conflict; a third equal to the first is a replay', async () => {
    const sessionId = await newSession()
    const result = await sink.writeGroup([pending(sessionId, 0, 1), pending(sessionId, 0, 2), pending(sessionId, 0, 1), pending(sessionId, 1, 3)])
    expect(result.inserted).toEqual(new Set([`${sessionId}:0`, `${sessionId}:1`]))
    expect(result.conflicts).toEqual(new Set([1]))
    // Each batch's rows once: the first copy, not the conflicting or the repeated one.
    expect(await stored(sessionId)).toMatchObject({ total: 2 * BATCH, conflicts: 1, readings: 2 * BATCH, ledger: 2 })
  })

  it('compares copies in one group with the ledger when the batch id was written before', async () => {
    const sessionId = await newSession()
    await sink.writeGroup([pending(sessionId, 0, 1)])
    const result = await sink.writeGroup([pending(sessionId, 0, 2), pending(sessionId, 0, 2), pending(sessionId, 0, 1)])
    expect(result.inserted).toEqual(new Set())
    expect(result.conflicts).toEqual(new Set([0, 1]))
    expect(await stored(sessionId)).toMatchObject({ total: BATCH, conflicts: 2, readings: BATCH, ledger: 1 })
  })

  it('never counts a conflict for a batch whose ledger row has no digest (written before digests)', async () => {
    const sessionId = await newSession()
    await sink.writeGroup([pending(sessionId, 0, 1)])
    await pool.query('update session_batches set digest = null where session_id = $1', [sessionId])
    const result = await sink.writeGroup([pending(sessionId, 0, 2)])
    expect(result.conflicts).toEqual(new Set())
    expect(await stored(sessionId)).toMatchObject({ total: BATCH, conflicts: 0, readings: BATCH })
  })

  it('counts nothing for a session that has ended', async () => {
    const sessionId = await newSession()
    await sink.writeGroup([pending(sessionId, 0, 1)])
    await pool.query('update sessions set destroyed_at = now(), destroy_reason = \'client\', integrity = \'unreported\' where id = $1', [sessionId])
    const result = await sink.writeGroup([pending(sessionId, 0, 2)])
    expect(result.totalsBefore.has(sessionId)).toBe(false)
    expect(result.conflicts).toEqual(new Set())
    expect(await stored(sessionId)).toMatchObject({ conflicts: 0 })
  })
})
