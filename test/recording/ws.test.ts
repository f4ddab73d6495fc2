import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { makeReadings, TestPhone, wsUrl } from '../ws-client.js'

const BATCH = 375
const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl, { SESSION_REAPER_INTERVAL_MS: '100' })
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

async function recordingPhone (target: FastifyInstance = app) {
  const tester = await createUserWithToken(app, 'BETATESTER')
  const phone = await connect(target, tester.token)
  return { phone, tester }
}

async function countReadings (sessionId: unknown): Promise<number> {
  const { rows: [row] } = await app.db.query<{ n: number }>('select count(*)::int as n from readings where session_id = $1', [sessionId])
  return row?.n ?? -1
}

async function sessionRow (sessionId: unknown) {
  const { rows: [row] } = await app.db.query('select * from sessions where id = $1', [sessionId])
  return row
}

describe('the upgrade', () => {
  it('refuses a missing or bad token with 401 and an admin with 403', async () => {
    const admin = await createUserWithToken(app, 'ADMIN')
    await expect(TestPhone.connect(wsUrl(app))).rejects.toMatchObject({ statusCode: 401 })
    await expect(TestPhone.connect(wsUrl(app), bearer('nonsense'))).rejects.toMatchObject({ statusCode: 401 })
    await expect(TestPhone.connect(wsUrl(app), bearer(admin.token))).rejects.toMatchObject({ statusCode: 403 })
  })

  it('accepts the token as ?access_token= for phones that cannot set headers', async () => {
    const tester = await createUserWithToken(app)
    const phone = await TestPhone.connect(wsUrl(app, `?access_token=${encodeURIComponent(tester.token)}`))
    phones.push(phone)
    phone.send('create_session', {})
    expect(await phone.expect('session_created')).toHaveProperty('sessionId')
  })
})

describe('sessions', () => {
  it('creates a session with metadata, and resumes it on a new socket', async () => {
    const { phone, tester } = await recordingPhone()
    const metadata = { device: 'Pixel 9', os: 'Android 16', sampleRateHz: 100, activity: 'cycling', carriedIn: 'pocket' }
    phone.send('create_session', { metadata })
    const created = await phone.expect('session_created')
    expect(created).toEqual({ sessionId: expect.any(Number), createdAt: expect.any(String), expiresAt: expect.any(String) })
    expect(new Date(created.expiresAt as string).getTime() - new Date(created.createdAt as string).getTime()).toBe(600_000)
    expect((await sessionRow(created.sessionId)).metadata).toEqual(metadata)

    phone.send('create_session', {})
    expect(await phone.expect('session_already_exist')).toEqual({ sessionId: created.sessionId, createdAt: created.createdAt })

    const second = await connect(app, tester.token)
    second.send('create_session', { metadata: { other: true } })
    expect(await second.expect('session_already_exist')).toMatchObject({ sessionId: created.sessionId })
  })

  it('gives session_not_found to a write or destroy with no active session', async () => {
    const { phone } = await recordingPhone()
    phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: makeReadings(BATCH) })
    expect(await phone.expect('session_not_found')).toEqual({})
    phone.send('destroy_session', {})
    expect(await phone.expect('session_not_found')).toEqual({})
  })

  it('reports integrity ok, mismatch and unreported', async () => {
    for (const [sent, verdict] of [[BATCH, 'ok'], [BATCH + 1, 'mismatch'], [undefined, 'unreported']] as const) {
      const { phone } = await recordingPhone()
      phone.send('create_session', {})
      const { sessionId } = await phone.expect('session_created')
      phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: makeReadings(BATCH) })
      phone.send('destroy_session', sent === undefined ? {} : { totalSensorReadingsSent: sent })
      await phone.expect('sensor_readings_batch_written')
      const destroyed = await phone.expect('session_destroyed')
      expect(destroyed).toEqual({
        sessionId,
        destroyedAt: expect.any(String),
        reason: 'client',
        totalSensorReadingsWritten: BATCH,
        integrity: verdict,
        report: expect.objectContaining({ complete: verdict !== 'mismatch', problems: verdict === 'mismatch' ? ['integrity_mismatch'] : [] })
      })
      const row = await sessionRow(sessionId)
      expect(row).toMatchObject({ integrity: verdict, destroy_reason: 'client', total_sensor_readings_written: BATCH })
    }
  })

  it('closes a socket that creates no session in time', async () => {
    const quick = await build(databaseUrl, { WS_CREATE_SESSION_TIMEOUT_MS: '300' })
    await quick.listen({ port: 0, host: '127.0.0.1' })
    const tester = await createUserWithToken(quick)
    const phone = await connect(quick, tester.token)
    await phone.closed
    expect(phone.closeCode).toBe(1008)
    expect(phone.closeReason).toContain('no session')
  })
})

describe('batches', () => {
  it('acks 20 pipelined batches in order with exact totals, then destroys with integrity ok', async () => {
    const { phone } = await recordingPhone()
    phone.send('create_session', {})
    const { sessionId } = await phone.expect('session_created')
    const start = Date.now() - 120_000
    for (let batchId = 0; batchId < 20; batchId++) {
      phone.send('write_sensor_readings_batch', { batch_id: batchId, sensor_readings: makeReadings(BATCH, start + batchId * 1250, batchId) })
    }
    phone.send('destroy_session', { totalSensorReadingsSent: 20 * BATCH })
    for (let batchId = 0; batchId < 20; batchId++) {
      expect(await phone.expect('sensor_readings_batch_written')).toEqual({ sessionId, batchId, totalSensorReadingsWritten: (batchId + 1) * BATCH })
    }
    expect(await phone.expect('session_destroyed')).toMatchObject({ sessionId, reason: 'client', totalSensorReadingsWritten: 20 * BATCH, integrity: 'ok' })
    expect(await countReadings(sessionId)).toBe(20 * BATCH)
    const { rows } = await app.db.query('select batch_id from session_batches where session_id = $1 order by batch_id', [sessionId])
    expect(rows.map(r => r.batch_id)).toEqual(Array.from({ length: 20 }, (_, i) => i))
  })

  it('continues the active session for a reconnected phone that pipelines batches without create_session', async () => {
    const { phone, tester } = await recordingPhone()
    phone.send('create_session', {})
    const { sessionId } = await phone.expect('session_created')
    phone.terminate()
    const again = await connect(app, tester.token)
    for (let batchId = 0; batchId < 10; batchId++) {
      again.send('write_sensor_readings_batch', { batch_id: batchId, sensor_readings: makeReadings(BATCH, Date.now() - 100_000 + batchId * 1250) })
    }
    for (let batchId = 0; batchId < 10; batchId++) {
      expect(await again.expect('sensor_readings_batch_written')).toEqual({ sessionId, batchId, totalSensorReadingsWritten: (batchId + 1) * BATCH })
    }
  })

  it('stores exactly what was sent: timestamps to the microsecond, doubles bit for bit', async () => {
    const { phone } = await recordingPhone()
    phone.send('create_session', {})
    const { sessionId } = await phone.expect('session_created')
    const readings = makeReadings(BATCH)
    readings[0] = { timestamp: '2025-06-01T12:00:00.123456+02:00', sensor: 'Gyroscope', xAxis: 0.1 + 0.2, yAxis: 5e-324, zAxis: -1.7976931348623157e308 }
    readings[1] = { timestamp: 1748779200123.457, sensor: 'Magnetometer', xAxis: -2.5e-310, yAxis: 1e-300, zAxis: 123456789.12345679 }
    phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: readings })
    await phone.expect('sensor_readings_batch_written')
    const { rows } = await app.db.query(
      `select to_char(ts at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') as ts, sensor, x::text, y::text, z::text
       from readings where session_id = $1 and ts < '2025-06-02' order by ts`, [sessionId])
    expect(rows).toEqual([
      { ts: '2025-06-01T10:00:00.123456', sensor: 1, x: String(0.1 + 0.2), y: '5e-324', z: '-1.7976931348623157e+308' },
      { ts: '2025-06-01T12:00:00.123457', sensor: 2, x: '-2.5e-310', y: '1e-300', z: String(123456789.12345679) }
    ])
  })

  it('acks a resent batch again with the unchanged total and writes it once', async () => {
    const { phone } = await recordingPhone()
    phone.send('create_session', {})
    const { sessionId } = await phone.expect('session_created')
    const readings = makeReadings(BATCH)
    // Twice back to back (likely the same group commit), then once after its ack.
    phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: readings })
    phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: readings })
    expect(await phone.expect('sensor_readings_batch_written')).toMatchObject({ batchId: 0, totalSensorReadingsWritten: BATCH })
    expect(await phone.expect('sensor_readings_batch_written')).toMatchObject({ batchId: 0, totalSensorReadingsWritten: BATCH })
    phone.send('write_sensor_readings_batch', { batch_id: 1, sensor_readings: makeReadings(BATCH, Date.now() - 30_000) })
    phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: readings })
    expect(await phone.expect('sensor_readings_batch_written')).toMatchObject({ batchId: 1, totalSensorReadingsWritten: 2 * BATCH })
    expect(await phone.expect('sensor_readings_batch_written')).toMatchObject({ batchId: 0, totalSensorReadingsWritten: 2 * BATCH })
    expect(await countReadings(sessionId)).toBe(2 * BATCH)
  })

  it('rejects a half-bad batch whole, naming the bad fields, and writes nothing', async () => {
    const { phone } = await recordingPhone()
    phone.send('create_session', {})
    const { sessionId } = await phone.expect('session_created')
    const readings: unknown[] = makeReadings(BATCH)
    readings[200] = { ...(readings[200] as object), xAxis: 'NaN' }
    readings[300] = { ...(readings[300] as object), sensor: 'Barometer' }
    readings[301] = { ...(readings[301] as object), timestamp: '1970-01-01T00:00:00Z' }
    readings[302] = { ...(readings[302] as object), timestamp: Date.now() + 3 * 24 * 3600_000 }
    readings[303] = { ...(readings[303] as object), timestamp: '2025-02-30T00:00:00Z' }
    phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: readings })
    const rejected = await phone.expect('invalid_sensor_reading_schema')
    expect(rejected).toMatchObject({ sessionId, batchId: 0 })
    const paths = (rejected.issues as Array<{ path: unknown[] }>).map(issue => issue.path.join('.'))
    expect(paths).toEqual(expect.arrayContaining([
      'sensor_readings.200.xAxis', 'sensor_readings.300.sensor', 'sensor_readings.301.timestamp',
      'sensor_readings.302.timestamp', 'sensor_readings.303.timestamp'
    ]))
    expect(await countReadings(sessionId)).toBe(0)
    const { rowCount } = await app.db.query('select 1 from session_batches where session_id = $1', [sessionId])
    expect(rowCount).toBe(0)
  })

  it('rejects a batch of the wrong size with expected and received', async () => {
    const { phone } = await recordingPhone()
    phone.send('create_session', {})
    const { sessionId } = await phone.expect('session_created')
    for (const n of [0, 1, BATCH - 1, BATCH + 1]) {
      phone.send('write_sensor_readings_batch', { batch_id: 7, sensor_readings: makeReadings(n) })
      expect(await phone.expect('invalid_sensor_readings_batch_size')).toEqual({ sessionId, batchId: 7, expected: BATCH, received: n })
    }
    phone.send('write_sensor_readings_batch', { batch_id: -1, sensor_readings: makeReadings(BATCH) })
    expect(await phone.expect('invalid_sensor_reading_schema')).toMatchObject({ batchId: -1, issues: [{ path: ['batch_id'] }] })
    expect(await countReadings(sessionId)).toBe(0)
  })

  it('refuses a batch for a session past its expiry even before the reaper ends it', async () => {
    const { phone } = await recordingPhone()
    phone.send('create_session', {})
    const { sessionId } = await phone.expect('session_created')
    phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: makeReadings(BATCH) })
    await phone.expect('sensor_readings_batch_written')
    // Expire the session while the phone still believes it is open; the next batch races the reaper.
    await app.db.query('update sessions set expires_at = now() where id = $1', [sessionId])
    phone.send('write_sensor_readings_batch', { batch_id: 1, sensor_readings: makeReadings(BATCH) })
    const answers = [await phone.next(), await phone.next()].map(f => f.event).sort()
    expect(answers).toEqual(['session_destroyed', 'session_not_found'])
    expect(await countReadings(sessionId)).toBe(BATCH)
  })
})

describe('hostile frames', () => {
  it('answers garbage with error events and keeps the socket open', async () => {
    const { phone } = await recordingPhone()
    phone.sendRaw('not json')
    expect(await phone.expect('error')).toMatchObject({ code: 'invalid_json' })
    phone.sendRaw(JSON.stringify([1, 2]))
    expect(await phone.expect('error')).toMatchObject({ code: 'invalid_frame' })
    phone.sendRaw(JSON.stringify({ event: 'create_session', data: 'x' }))
    expect(await phone.expect('error')).toMatchObject({ code: 'invalid_frame' })
    phone.send('launch_rockets', {})
    expect(await phone.expect('error')).toMatchObject({ code: 'unknown_event' })
    phone.sendRaw(Buffer.from([1, 2, 3]), true)
    expect(await phone.expect('error')).toMatchObject({ code: 'binary_frames_not_supported' })
    phone.send('create_session', { metadata: 'not an object' })
    expect(await phone.expect('error')).toMatchObject({ code: 'invalid_event_data' })
    phone.send('create_session', { metadata: { notes: 'x'.repeat(20_000) } })
    expect(await phone.expect('error')).toMatchObject({ code: 'metadata_too_large' })
    phone.send('destroy_session', { totalSensorReadingsSent: -5 })
    expect(await phone.expect('error')).toMatchObject({ code: 'invalid_event_data' })
    phone.send('create_session', {})
    await phone.expect('session_created')
  })

  it('closes the socket with 1009 on an oversized frame', async () => {
    const { phone } = await recordingPhone()
    phone.sendRaw('x'.repeat(1_048_577))
    await phone.closed
    expect(phone.closeCode).toBe(1009)
  })
})

describe('an admin ending a session', () => {
  it('ends the session with reason admin and tells the phone', async () => {
    const admin = await createUserWithToken(app, 'ADMIN')
    const { phone, tester } = await recordingPhone()
    phone.send('create_session', {})
    const { sessionId } = await phone.expect('session_created')
    phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: makeReadings(BATCH) })
    await phone.expect('sensor_readings_batch_written')

    expect((await app.inject({ method: 'POST', url: `/sessions/${sessionId}/end`, headers: bearer(tester.token) })).statusCode).toBe(403)
    const ended = await app.inject({ method: 'POST', url: `/sessions/${sessionId}/end`, headers: bearer(admin.token) })
    expect(ended.statusCode).toBe(200)
    expect(ended.json()).toMatchObject({ id: sessionId, destroyReason: 'admin', integrity: 'unreported', totalSensorReadingsWritten: BATCH })
    expect(await phone.expect('session_destroyed')).toMatchObject({ sessionId, reason: 'admin', totalSensorReadingsWritten: BATCH })

    expect((await app.inject({ method: 'POST', url: `/sessions/${sessionId}/end`, headers: bearer(admin.token) })).statusCode).toBe(409)
    expect((await app.inject({ method: 'POST', url: '/sessions/999999999/end', headers: bearer(admin.token) })).statusCode).toBe(404)
    phone.send('write_sensor_readings_batch', { batch_id: 1, sensor_readings: makeReadings(BATCH) })
    expect(await phone.expect('session_not_found')).toEqual({})
  })
})
