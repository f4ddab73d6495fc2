import pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'
import { createOrResumeSession, destroySession } from '../../src/db/sessions/session-lifecycle.js'
import { MAX_REPORT_ATTEMPTS } from '../../src/reports/report-store.js'
import { REPORT_VERSION } from '../../src/schemas/session-report.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { TestPhone, wsUrl, type Reading } from '../ws-client.js'

/** When reports are made, how each way a session ends delivers one, and how admins find the sessions to look at. */

const BATCH = 6
const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl, { SENSOR_READINGS_BATCH_SIZE: String(BATCH), SESSION_REAPER_INTERVAL_MS: '100', SESSION_REPORT_TIMEOUT_MS: '1000' })
await app.listen({ port: 0, host: '127.0.0.1' })

const phones: TestPhone[] = []
afterEach(async () => {
  await Promise.all(phones.splice(0).map(phone => phone.close()))
})

const SENSORS = ['Accelerometer', 'Gyroscope', 'Magnetometer'] as const

/** Two samples of all three sensors per batch, 10 ms apart, ending about now. */
function batchReadings (batchId: number, startMs: number): Reading[] {
  return Array.from({ length: BATCH }, (_, i) => ({
    timestamp: startMs + (batchId * 2 + Math.floor(i / 3)) * 10,
    sensor: SENSORS[i % 3] as string,
    xAxis: i,
    yAxis: -i,
    zAxis: 0.5
  }))
}

async function phoneWithSession (env: { token?: string } = {}) {
  const tester = env.token ? undefined : await createUserWithToken(app, 'BETATESTER')
  const phone = await TestPhone.connect(wsUrl(app), bearer(env.token ?? (tester as { token: string }).token))
  phones.push(phone)
  phone.send('create_session', {})
  const { sessionId } = await phone.expect('session_created') as { sessionId: number }
  return { phone, sessionId, tester }
}

async function waitFor<T> (probe: () => Promise<T | undefined>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

const admin = await createUserWithToken(app, 'ADMIN')

describe('the batch ledger', () => {
  it('keeps each batch\'s receive time and exact device span, and the first receipt of a resent batch', async () => {
    const { phone, sessionId } = await phoneWithSession()
    const at = (micros: number) => new Date(Math.floor(micros / 1000)).toISOString().replace(/\.(\d{3})Z$/, (_, ms) => `.${ms}${String(micros % 1000).padStart(3, '0')}Z`)
    const baseMicros = (Date.now() - 5000) * 1000
    // Out of order within the batch, with microseconds: the span is the min and max, to the microsecond.
    const micros = [baseMicros + 40_123, baseMicros + 7, baseMicros + 99_999, baseMicros + 50_000, baseMicros + 1, baseMicros + 60_001]
    const readings = micros.map((m, i) => ({ timestamp: at(m), sensor: SENSORS[i % 3], xAxis: 1, yAxis: 2, zAxis: 3 }))
    const before = Date.now()
    phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: readings })
    await phone.expect('sensor_readings_batch_written')
    const after = Date.now()
    phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: readings })
    await phone.expect('sensor_readings_batch_written')
    const { rows } = await app.db.query<{ received_at: Date, first: string, last: string }>(
      `select received_at, to_char(first_reading_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as first,
         to_char(last_reading_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as last
       from session_batches where session_id = $1`, [sessionId])
    expect(rows).toHaveLength(1)
    const [row] = rows as [typeof rows[number]]
    expect(row.first).toBe(at(baseMicros + 1))
    expect(row.last).toBe(at(baseMicros + 99_999))
    expect(row.received_at.getTime()).toBeGreaterThanOrEqual(before)
    expect(row.received_at.getTime()).toBeLessThanOrEqual(after)
  })
})

describe('every way a session ends carries its report', () => {
  it('on expiry: the connected phone hears session_destroyed with the summary', async () => {
    const tester = await createUserWithToken(app, 'BETATESTER')
    const { phone, sessionId } = await phoneWithSession({ token: tester.token })
    const start = Date.now() - 1000
    for (const batchId of [0, 1, 3]) phone.send('write_sensor_readings_batch', { batch_id: batchId, sensor_readings: batchReadings(batchId, start) })
    for (let i = 0; i < 3; i++) await phone.expect('sensor_readings_batch_written')
    await app.db.query('update sessions set expires_at = now() where id = $1', [sessionId])
    const destroyed = await phone.expect('session_destroyed')
    expect(destroyed).toMatchObject({ sessionId, reason: 'expired', integrity: 'unreported' })
    expect(destroyed.report).toMatchObject({ complete: false, lostBatches: 1, warnings: expect.arrayContaining(['integrity_unreported']) })
    expect((destroyed.report as { problems: string[] }).problems).toContain('lost_batches')
  })

  it('by an admin: the phone hears it, and the answer carries it', async () => {
    const { phone, sessionId } = await phoneWithSession()
    phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: batchReadings(0, Date.now() - 100) })
    await phone.expect('sensor_readings_batch_written')
    const response = await app.inject({ method: 'POST', url: `/sessions/${sessionId}/end`, headers: bearer(admin.token) })
    expect(response.statusCode).toBe(200)
    const destroyed = await phone.expect('session_destroyed')
    expect(destroyed).toMatchObject({ reason: 'admin', report: { lostBatches: 0, missingSensors: [] } })
    expect(response.json().report).toEqual(destroyed.report)
  })

  it('with no phone connected: the reaper computes it', async () => {
    const tester = await createUserWithToken(app, 'BETATESTER')
    const { session } = await createOrResumeSession(app.db, tester.user.id, 600, {})
    await destroySession(app.db, session.id, 'client', 0)
    const stored = await waitFor(async () => {
      const { rows: [row] } = await app.db.query<{ complete: boolean }>('select complete from session_reports where session_id = $1', [session.id])
      return row
    })
    // Nothing recorded: every sensor is missing.
    expect(stored.complete).toBe(false)
    const { rows: [flags] } = await app.db.query('select report_pending, report_attempts from sessions where id = $1', [session.id])
    expect(flags).toEqual({ report_pending: false, report_attempts: 0 })
  })

  it('tells the phone report: null when the report cannot be computed in time, and the reaper stores it later', async () => {
    const { phone, sessionId } = await phoneWithSession()
    phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: batchReadings(0, Date.now() - 100) })
    await phone.expect('sensor_readings_batch_written')
    // Another transaction holds the report's row: storing it waits past SESSION_REPORT_TIMEOUT_MS.
    const blocker = new pg.Client({ connectionString: databaseUrl })
    await blocker.connect()
    try {
      await blocker.query('begin')
      await blocker.query('insert into session_reports (session_id, complete, summary, report) values ($1, true, \'{}\', \'{}\')', [sessionId])
      phone.send('destroy_session', { totalSensorReadingsSent: BATCH })
      expect(await phone.expect('session_destroyed')).toMatchObject({ sessionId, integrity: 'ok', report: null })
    } finally {
      await blocker.query('rollback')
      await blocker.end()
    }
    const stored = await waitFor(async () => {
      const { rows: [row] } = await app.db.query<{ summary: { lostBatches: number } }>('select summary from session_reports where session_id = $1', [sessionId])
      return row
    })
    expect(stored.summary.lostBatches).toBe(0)
  })

  it('gives up after a few failed attempts, and computes it on request once it can', async () => {
    const tester = await createUserWithToken(app, 'BETATESTER')
    const { session } = await createOrResumeSession(app.db, tester.user.id, 600, {})
    // Another transaction holds the report's row: storing it waits past SESSION_REPORT_TIMEOUT_MS and fails.
    const blocker = new pg.Client({ connectionString: databaseUrl })
    await blocker.connect()
    try {
      await blocker.query('begin')
      await blocker.query('insert into session_reports (session_id, complete, summary, report) values ($1, true, \'{}\', \'{}\')', [session.id])
      await destroySession(app.db, session.id, 'client', 0)
      const attempts = await waitFor(async () => {
        const { rows: [row] } = await app.db.query<{ report_attempts: number }>('select report_attempts from sessions where id = $1', [session.id])
        return row && row.report_attempts >= MAX_REPORT_ATTEMPTS ? row.report_attempts : undefined
      })
      expect(attempts).toBe(MAX_REPORT_ATTEMPTS)
      await new Promise(resolve => setTimeout(resolve, 1000))
      const { rows: [row] } = await app.db.query('select report_pending, report_attempts from sessions where id = $1', [session.id])
      expect(row).toEqual({ report_pending: true, report_attempts: MAX_REPORT_ATTEMPTS })
    } finally {
      await blocker.query('rollback')
      await blocker.end()
    }
    const response = await app.inject({ method: 'GET', url: `/sessions/${session.id}/report`, headers: bearer(tester.token) })
    expect(response.statusCode).toBe(200)
    expect(response.json().summary.missingSensors).toEqual([...SENSORS])
  })
})

describe('reading reports', () => {
  it('answers 409 while the session records, and 404 to anyone but its owner and admins', async () => {
    const { sessionId } = await phoneWithSession()
    const other = await createUserWithToken(app, 'BETATESTER')
    const active = await app.inject({ method: 'GET', url: `/sessions/${sessionId}/report`, headers: bearer(admin.token) })
    expect(active.statusCode).toBe(409)
    expect((await app.inject({ method: 'GET', url: `/sessions/${sessionId}/report`, headers: bearer(other.token) })).statusCode).toBe(404)
    expect((await app.inject({ method: 'GET', url: '/sessions/999999999/report', headers: bearer(admin.token) })).statusCode).toBe(404)
  })

  it('computes a report once when several ask at the same time: the others wait and read it', async () => {
    const tester = await createUserWithToken(app, 'BETATESTER')
    const { session } = await createOrResumeSession(app.db, tester.user.id, 600, {})
    // Another instance ends the session and stores its report in one transaction, still open
    // while three requests for the report arrive: they wait for its lock, then must read its report.
    const other = new pg.Client({ connectionString: databaseUrl })
    await other.connect()
    try {
      await other.query('begin')
      await other.query('update sessions set destroyed_at = now(), destroy_reason = \'client\', integrity = \'unreported\' where id = $1', [session.id])
      const summary = { complete: true, problems: [], warnings: [], lostBatches: 0, gaps: 0, duplicateTimestamps: 0, missingSensors: [], clockOffsetMs: null }
      await other.query('insert into session_reports (session_id, computed_at, complete, summary, report) values ($1, now(), true, $2, $3)',
        [session.id, JSON.stringify(summary), JSON.stringify({ version: REPORT_VERSION, sessionId: session.id, computedAt: '2026-01-01T00:00:00.000Z', summary })])
      const asked = Promise.all([1, 2, 3].map(() => app.reports.report(session.id)))
      await new Promise(resolve => setTimeout(resolve, 200))
      await other.query('commit')
      const computedAt = (await asked).map(result => result.status === 'ready' ? result.report.computedAt : result.status)
      expect(computedAt).toEqual(['2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'])
    } finally {
      await other.end()
    }
  })

  it('computes a stored report of an older version again', async () => {
    const tester = await createUserWithToken(app, 'BETATESTER')
    const { session } = await createOrResumeSession(app.db, tester.user.id, 600, {})
    await destroySession(app.db, session.id, 'client', 0)
    await app.db.query(`insert into session_reports (session_id, complete, summary, report) values ($1, true, '{}', $2)
      on conflict (session_id) do update set report = excluded.report`, [session.id, JSON.stringify({ version: REPORT_VERSION - 1 })])
    const result = await app.reports.report(session.id)
    expect(result).toMatchObject({ status: 'ready', report: { version: REPORT_VERSION, summary: { missingSensors: [...SENSORS] } } })
  })

  it('estimates clock drift from the ledger: offset growing 1 ms every 10 s is 100 ppm', async () => {
    const tester = await createUserWithToken(app, 'BETATESTER')
    const { session } = await createOrResumeSession(app.db, tester.user.id, 600, {})
    // 60 batches received 10 s apart; the device's clock gains 1 ms per batch on a 250 ms head start.
    // Each batch spans 5 s of device time: the offset is measured from its latest reading.
    await app.db.query(
      `insert into session_batches (session_id, batch_id, reading_count, received_at, first_reading_at, last_reading_at)
       select $1, i, 1, timestamptz '2026-01-01 00:00:00+00' + i * interval '10 s',
         timestamptz '2026-01-01 00:00:00+00' + i * interval '10 s' + (250 + i - 5000) * interval '1 ms',
         timestamptz '2026-01-01 00:00:00+00' + i * interval '10 s' + (250 + i) * interval '1 ms'
       from generate_series(0, 59) i`, [session.id])
    await destroySession(app.db, session.id, 'client')
    const response = await app.inject({ method: 'GET', url: `/sessions/${session.id}/report`, headers: bearer(tester.token) })
    const { clock } = response.json()
    expect(clock).toEqual({
      batches: 60,
      offsetMs: { median: 279.5, p25: 264.75, p75: 294.25, min: 250, max: 309, spread: 29.5 },
      receivedSpanSeconds: 590,
      driftPpm: 100
    })
  })

  it('matches the textbook SQL (percentile_cont, stddev_pop over every interval) on jittery, gappy, duplicated timestamps', async () => {
    const tester = await createUserWithToken(app, 'BETATESTER')
    const { session } = await createOrResumeSession(app.db, tester.user.id, 600, {})
    // 3 sensors near 100 Hz with microsecond jitter, a few pauses and repeated timestamps, reproducibly random.
    const client = await app.db.connect()
    try {
      await client.query('select setseed(0.42)')
      await client.query(
      `insert into readings (session_id, ts, sensor, x, y, z)
       select $1::bigint, timestamptz '2026-01-01 00:00:00+00'
           + (i * 10000 + floor(random() * 3000) + case when i % 997 = 0 then 250000 else 0 end) * interval '1 microsecond',
         s::smallint, 0, 0, 0
       from generate_series(0, 5000) i, generate_series(0, 2) s
`, [session.id])
      // Repeated timestamps: every gyroscope reading on a whole multiple of 7 µs comes twice.
      await client.query(`insert into readings (session_id, ts, sensor, x, y, z)
        select session_id, ts, sensor, 1, 1, 1 from readings
        where session_id = $1 and sensor = 1 and (date_part('epoch', ts) * 1e6)::bigint % 7 = 0`, [session.id])
    } finally {
      client.release()
    }
    await destroySession(app.db, session.id, 'client')
    const response = await app.inject({ method: 'GET', url: `/sessions/${session.id}/report`, headers: bearer(tester.token) })
    expect(response.statusCode, response.body).toBe(200)
    const { sensors } = response.json()
    const { rows } = await app.db.query<{ sensor: number, readings: number, duplicates: number, median_ms: number, jitter_ms: number, gaps: number, longest_ms: number, missing_ms: number }>(
      `with d as (
         select sensor, extract(epoch from ts - lag(ts) over (partition by sensor order by ts)) * 1000 as dt
         from readings where session_id = $1
       ), m as (
         select sensor, count(*)::int as readings, (count(*) filter (where dt = 0))::int as duplicates,
           percentile_cont(0.5) within group (order by dt) filter (where dt > 0) as median_ms
         from d group by sensor
       )
       select m.sensor, m.readings, m.duplicates, m.median_ms,
         stddev_pop(d.dt) filter (where d.dt > 0 and d.dt <= 3 * m.median_ms) as jitter_ms,
         (count(*) filter (where d.dt > 3 * m.median_ms))::int as gaps,
         max(d.dt) filter (where d.dt > 3 * m.median_ms) as longest_ms,
         sum(d.dt - m.median_ms) filter (where d.dt > 3 * m.median_ms) as missing_ms
       from m join d using (sensor) group by m.sensor, m.readings, m.duplicates, m.median_ms order by m.sensor`, [session.id])
    expect(rows).toHaveLength(3)
    for (const row of rows) {
      const reported = sensors[SENSORS[row.sensor] as string]
      expect(reported).toMatchObject({ readings: row.readings, duplicateTimestamps: row.duplicates, gaps: { count: row.gaps } })
      // The report rounds to the microsecond (3 decimals of ms); the textbook works in float ms.
      const close = (actual: number, expected: number) => expect(Math.abs(actual - Number(expected))).toBeLessThanOrEqual(0.0011)
      close(reported.medianIntervalMs, row.median_ms)
      close(reported.jitterMs, row.jitter_ms)
      close(reported.gaps.longestMs, row.longest_ms)
      close(reported.gaps.missingMs, row.missing_ms)
      // The fixture must exercise what it claims to.
      expect(row.gaps).toBeGreaterThan(0)
      expect(Number(row.jitter_ms)).toBeGreaterThan(0.5)
    }
    expect(rows[1]?.duplicates).toBeGreaterThan(40)
  })

  it('lists at most 100 lost ranges and says the list is cut', async () => {
    const tester = await createUserWithToken(app, 'BETATESTER')
    const { session } = await createOrResumeSession(app.db, tester.user.id, 600, {})
    // Every other batch id of 0..300: 150 holes.
    await app.db.query(`insert into session_batches (session_id, batch_id, reading_count)
      select $1, i * 2, 1 from generate_series(0, 150) i`, [session.id])
    await destroySession(app.db, session.id, 'client')
    const { batches } = (await app.inject({ method: 'GET', url: `/sessions/${session.id}/report`, headers: bearer(tester.token) })).json()
    expect(batches).toMatchObject({ written: 151, highestBatchId: 300, lost: 150, lostRangesTruncated: true })
    expect(batches.lostRanges).toHaveLength(100)
    expect(batches.lostRanges.slice(0, 2)).toEqual([[1, 1], [3, 3]])
  })
})

describe('finding the sessions to look at', () => {
  it('filters by integrity and completeness, across every user for admins', async () => {
    const owner = await createUserWithToken(app, 'BETATESTER')
    const ids: Record<string, number> = {}
    for (const [name, sent, lose] of [['ok', 2 * BATCH, false], ['mismatch', 3 * BATCH, false], ['lost', 2 * BATCH, true]] as const) {
      const user = name === 'ok' ? owner : await createUserWithToken(app, 'BETATESTER')
      const { phone, sessionId } = await phoneWithSession({ token: user.token })
      const start = Date.now() - 1000
      phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: batchReadings(0, start) })
      phone.send('write_sensor_readings_batch', { batch_id: lose ? 2 : 1, sensor_readings: batchReadings(lose ? 2 : 1, start) })
      for (let i = 0; i < 2; i++) await phone.expect('sensor_readings_batch_written')
      phone.send('destroy_session', { totalSensorReadingsSent: sent })
      await phone.expect('session_destroyed')
      ids[name] = sessionId
    }
    const list = async (query: string, token = admin.token) => {
      const response = await app.inject({ method: 'GET', url: `/sessions?${query}`, headers: bearer(token) })
      expect(response.statusCode, response.body).toBe(200)
      return (response.json().items as Array<{ id: number }>).map(item => item.id).filter(id => Object.values(ids).includes(id)).sort()
    }
    // Admins do not record: their list is every user's sessions.
    expect(await list('integrity=mismatch')).toEqual([ids.mismatch])
    expect(await list('incomplete=true')).toEqual([ids.mismatch, ids.lost].sort())
    expect(await list('incomplete=false')).toEqual([ids.ok])
    expect(await list('incomplete=true&integrity=ok')).toEqual([ids.lost])
    // A beta tester's list: their own sessions, filtered.
    expect(await list('incomplete=false', owner.token)).toEqual([ids.ok])
    expect(await list('incomplete=true', owner.token)).toEqual([])
    const page = await app.inject({ method: 'GET', url: '/sessions?integrity=mismatch', headers: bearer(admin.token) })
    expect(page.json().total).toBe(page.json().items.length)

    const byUser = await app.inject({ method: 'GET', url: `/users/${owner.user.id}/sessions?incomplete=false`, headers: bearer(admin.token) })
    expect(byUser.json().items.map((s: { id: number }) => s.id)).toEqual([ids.ok])

    for (const bad of ['incomplete=yes', 'incomplete=1', 'integrity=fine']) {
      const response = await app.inject({ method: 'GET', url: `/sessions?${bad}`, headers: bearer(admin.token) })
      expect(response.statusCode, bad).toBe(400)
    }
  })
})
