import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { issueAccessToken } from '../../src/db/access-tokens-repository.js'
import { migrate, MIGRATIONS_DIR } from '../../src/db/startup/migrate.js'
import { createPool } from '../../src/db/pool.js'
import { silentLog } from '../../src/logger.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { makeReadings, TestPhone, wsUrl, type Reading } from '../ws-client.js'

/** A batch id resent with other readings: refused as batch_conflict, never stored, counted in metrics and the report. */

const BATCH = 30
const env = { SENSOR_READINGS_BATCH_SIZE: String(BATCH) }
const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl, env)
await app.listen({ port: 0, host: '127.0.0.1' })

const phones: TestPhone[] = []
afterEach(async () => {
  await Promise.all(phones.splice(0).map(phone => phone.close()))
})

async function connect (target: FastifyInstance, token: string): Promise<TestPhone> {
  const phone = await TestPhone.connect(wsUrl(target), bearer(token))
  phones.push(phone)
  return phone
}

/** Batch `batchId` of a recording that started at startMs: 10 ms per sample of the three sensors. */
const batchReadings = (batchId: number, startMs: number, seed = 1): Reading[] =>
  makeReadings(BATCH, startMs + batchId * (BATCH / 3) * 10, seed)

async function stored (target: FastifyInstance, sessionId: unknown) {
  const { rows: [row] } = await target.db.query<{ total: number, conflicts: number, readings: number, xs: number[] }>(
    `select total_sensor_readings_written as total, batch_conflicts as conflicts,
       (select count(*)::int from readings where session_id = s.id) as readings,
       (select array_agg(x order by ts, sensor) from readings where session_id = s.id) as xs
     from sessions s where id = $1`, [sessionId])
  return row
}

async function metric (name: string): Promise<string | undefined> {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
  return text.split('\n').find(line => line.startsWith(`${name} `))
}

describe('a resent batch id', () => {
  it('is acknowledged again with the same readings (as ISO or epoch ms) and refused as batch_conflict with others', async () => {
    const tester = await createUserWithToken(app, 'BETATESTER')
    const phone = await connect(app, tester.token)
    phone.send('create_session', {})
    const { sessionId } = await phone.expect('session_created') as { sessionId: number }
    const startMs = Date.now() - 60_000
    const first = batchReadings(0, startMs)

    phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: first })
    expect(await phone.expect('sensor_readings_batch_written')).toEqual({ sessionId, batchId: 0, totalSensorReadingsWritten: BATCH })
    // The same readings with ISO timestamps: the same content once encoded, so a replay.
    const asIso = first.map(reading => ({ ...reading, timestamp: new Date(reading.timestamp as number).toISOString() }))
    phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: asIso })
    expect(await phone.expect('sensor_readings_batch_written')).toEqual({ sessionId, batchId: 0, totalSensorReadingsWritten: BATCH })

    phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: batchReadings(0, startMs, 2) })
    const conflict = await phone.expect('batch_conflict')
    expect(conflict).toEqual({ sessionId, batchId: 0, message: expect.stringContaining('already written with other readings') })
    const after = await stored(app, sessionId)
    expect(after).toMatchObject({ total: BATCH, conflicts: 1, readings: BATCH })
    expect(after?.xs).toEqual(first.map(reading => reading.xAxis))
    expect(await metric('motion_ingest_batch_conflicts_total')).toBe('motion_ingest_batch_conflicts_total 1')
    expect(await metric('motion_ingest_batches_replayed_total')).toBe('motion_ingest_batches_replayed_total 1')

    // The session goes on; the first content is still the one a resend must match.
    phone.send('write_sensor_readings_batch', { batch_id: 1, sensor_readings: batchReadings(1, startMs) })
    expect(await phone.expect('sensor_readings_batch_written')).toEqual({ sessionId, batchId: 1, totalSensorReadingsWritten: 2 * BATCH })
    phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: first })
    expect(await phone.expect('sensor_readings_batch_written')).toEqual({ sessionId, batchId: 0, totalSensorReadingsWritten: 2 * BATCH })

    phone.send('destroy_session', { totalSensorReadingsSent: 2 * BATCH })
    const destroyed = await phone.expect('session_destroyed') as { integrity: string, report: Record<string, unknown> }
    expect(destroyed.integrity).toBe('ok')
    expect(destroyed.report).toMatchObject({ complete: false, problems: ['conflicting_resends'], lostBatches: 0, conflictingResends: 1 })
    const report = await app.inject({ method: 'GET', url: `/sessions/${sessionId}/report`, headers: bearer(tester.token) })
    expect(report.json()).toMatchObject({ summary: { conflictingResends: 1 }, batches: { written: 2, lost: 0, conflictingResends: 1 } })
  })

  it('answers each of several copies sent back to back in order: a replay is acked, a conflict refused', async () => {
    const tester = await createUserWithToken(app, 'BETATESTER')
    const phone = await connect(app, tester.token)
    phone.send('create_session', {})
    const { sessionId } = await phone.expect('session_created') as { sessionId: number }
    const startMs = Date.now() - 60_000
    // Sent without waiting: the copies may share a transaction with the first one or follow it.
    for (const seed of [1, 2, 1, 3]) phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: batchReadings(0, startMs, seed) })
    expect((await phone.next()).event).toBe('sensor_readings_batch_written')
    expect((await phone.next()).event).toBe('batch_conflict')
    expect(await phone.expect('sensor_readings_batch_written')).toEqual({ sessionId, batchId: 0, totalSensorReadingsWritten: BATCH })
    expect((await phone.next()).event).toBe('batch_conflict')
    expect(await stored(app, sessionId)).toMatchObject({ total: BATCH, conflicts: 2, readings: BATCH })
  })
})

/**
 * A database migrated up to just before the digests, with a session that has
 * batch 0 in its ledger; the app then migrates it to the current schema.
 */
async function legacyDatabase (): Promise<{ url: string, userId: number, sessionId: number }> {
  const url = await createTestDatabase()
  const before = await mkdtemp(join(tmpdir(), 'mi-migrations-'))
  const pool = createPool({ connectionString: url, max: 2, logger: silentLog })
  try {
    for (const file of await readdir(MIGRATIONS_DIR)) {
      if (Number(file.split('.')[0]) < 40) await copyFile(join(MIGRATIONS_DIR, file), join(before, file))
    }
    await migrate(pool, silentLog, before)
    const { rows: [user] } = await pool.query<{ id: number }>(
      'insert into users (name, email, public_key, role) values (\'Old\', \'old@example.test\', \'pk-old\', \'BETATESTER\') returning id')
    const { rows: [session] } = await pool.query<{ id: number }>(
      `insert into sessions (user_id, expires_at, total_sensor_readings_written)
       values ($1, now() + interval '10 minutes', $2) returning id`, [user?.id, BATCH])
    await pool.query('insert into session_batches (session_id, batch_id, reading_count, received_at) values ($1, 0, $2, now())', [session?.id, BATCH])
    return { url, userId: user?.id as number, sessionId: session?.id as number }
  } finally {
    await pool.end()
    await rm(before, { recursive: true, force: true })
  }
}

const legacy = await legacyDatabase()
const upgraded = await build(legacy.url, env)
await upgraded.listen({ port: 0, host: '127.0.0.1' })

describe('batches written before digests were kept', () => {
  it('are acknowledged when resent with any readings once the migration has run', async () => {
    const { userId, sessionId } = legacy
    const { rows: [ledger] } = await upgraded.db.query('select digest from session_batches where session_id = $1', [sessionId])
    expect(ledger).toEqual({ digest: null })
    expect(await stored(upgraded, sessionId)).toMatchObject({ total: BATCH, conflicts: 0 })

    const { accessToken } = await issueAccessToken(upgraded.db, userId, 3600)
    const phone = await connect(upgraded, accessToken)
    phone.send('create_session', {})
    expect(await phone.expect('session_already_exist')).toMatchObject({ sessionId })
    const startMs = Date.now() - 60_000
    phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: batchReadings(0, startMs, 7) })
    expect(await phone.expect('sensor_readings_batch_written')).toEqual({ sessionId, batchId: 0, totalSensorReadingsWritten: BATCH })
    // Batches written from now on have a digest.
    phone.send('write_sensor_readings_batch', { batch_id: 1, sensor_readings: batchReadings(1, startMs) })
    expect(await phone.expect('sensor_readings_batch_written')).toEqual({ sessionId, batchId: 1, totalSensorReadingsWritten: 2 * BATCH })
    phone.send('write_sensor_readings_batch', { batch_id: 1, sensor_readings: batchReadings(1, startMs, 8) })
    expect(await phone.expect('batch_conflict')).toMatchObject({ sessionId, batchId: 1 })
    expect(await stored(upgraded, sessionId)).toMatchObject({ total: 2 * BATCH, conflicts: 1, readings: BATCH })
  })
})
