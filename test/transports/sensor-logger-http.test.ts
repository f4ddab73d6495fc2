import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { loggerOptions } from '../../src/logger.js'
import type { PushOutcome } from '../../src/recording/push-observer.js'
import { PUSH_BODY_LIMIT } from '../../src/routes/sensor-logger.js'
import { androidEntries, iosEntries, messageText, STEP, T0, TEST_PUSH, xyz } from '../fixtures/sensor-logger-messages.js'
import { TcpProxy } from '../fixtures/tcp-proxy.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { TestPhone, wsUrl } from '../ws-client.js'

const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl)
await app.listen({ port: 0, host: '127.0.0.1' })

const phones: TestPhone[] = []
afterEach(async () => {
  await Promise.all(phones.splice(0).map(phone => phone.close()))
})

// Sensor Logger messages as the app writes them (bare nanosecond numbers past 2^53): test/fixtures/sensor-logger-messages.ts

// ---- HTTP ----

async function push (target: FastifyInstance, key: string, body: string, contentType: string | null = 'application/json') {
  const response = await target.inject({
    method: 'POST',
    url: `/ingest/sensor-logger/${key}`,
    headers: contentType === null ? {} : { 'content-type': contentType },
    payload: body
  })
  return { statusCode: response.statusCode, body: response.json(), headers: response.headers }
}

async function recorder (target: FastifyInstance = app) {
  const tester = await createUserWithToken(target)
  const minted = await target.inject({ method: 'POST', url: '/me/ingest-keys', headers: bearer(tester.token), payload: { label: 'test phone' } })
  expect(minted.statusCode).toBe(201)
  return { ...tester, key: minted.json().key as string, keyId: minted.json().id as number }
}

// ---- the database ----

const sessionsOf = async (db: FastifyInstance['db'], userId: number) =>
  (await db.query('select * from sessions where user_id = $1 order by id', [userId])).rows

const readingCount = async (db: FastifyInstance['db'], sessionId: number) =>
  (await db.query<{ n: number }>('select count(*)::int as n from readings where session_id = $1', [sessionId])).rows[0]?.n

/** Readings as stored: epoch microseconds as exact text, sensor name, axes. */
async function storedReadings (sessionId: number) {
  const { rows } = await app.db.query<{ micros: string, sensor: number, x: number, y: number, z: number }>(
    `select (extract(epoch from ts) * 1000000)::bigint::text as micros, sensor, x, y, z
     from readings where session_id = $1 order by ts, sensor`, [sessionId])
  return rows.map(row => ({ micros: row.micros, sensor: ['Accelerometer', 'Gyroscope', 'Magnetometer'][row.sensor], x: row.x, y: row.y, z: row.z }))
}

async function pushCount (target: FastifyInstance, outcome: PushOutcome): Promise<number> {
  const { values } = await target.metrics.pushMessages.get()
  return values.find(value => value.labels.transport === 'http' && value.labels.outcome === outcome)?.value ?? 0
}

/** A transaction holding the batch ledger: every batch commit waits until release() (reads go on). */
async function holdCommits (url: string) {
  const client = new pg.Client({ connectionString: url })
  client.on('error', () => {})
  await client.connect()
  await client.query('begin')
  await client.query('lock table session_batches in exclusive mode')
  return {
    /** Waits until some transaction waits for the ledger. */
    waiters: async () => {
      for (let i = 0; i < 200; i++) {
        const { rows: [row] } = await client.query<{ n: number }>(
          'select count(*)::int as n from pg_locks where relation = \'session_batches\'::regclass and not granted')
        if ((row?.n ?? 0) > 0) return
        await new Promise(resolve => setTimeout(resolve, 25))
      }
      throw new Error('no commit waited for the ledger')
    },
    release: async () => {
      await client.query('commit')
      await client.end()
    }
  }
}

describe('the documented messages', () => {
  it('answers the app\'s test push without starting a session', async () => {
    const tester = await recorder()
    const before = await pushCount(app, 'test')
    const answer = await push(app, tester.key, TEST_PUSH)
    expect(answer).toMatchObject({ statusCode: 200, body: { status: 'test', test: true, written: 0 } })
    expect(await sessionsOf(app.db, tester.user.id)).toEqual([])
    expect(await pushCount(app, 'test')).toBe(before + 1)
  })

  it('records an iPhone\'s accelerometer plus gravity, gyroscope and magnetometer, skips and counts location and battery, and keeps every microsecond', async () => {
    const tester = await recorder()
    const entries = iosEntries(20)
    const answer = await push(app, tester.key, messageText(0, 'ios-recording', entries))
    expect(answer.statusCode, JSON.stringify(answer.body)).toBe(200)
    expect(answer.body).toEqual({ status: 'written', sessionId: expect.any(Number), batchId: 0, written: 60, skipped: 2, totalSensorReadingsWritten: 60 })

    const [session] = await sessionsOf(app.db, tester.user.id)
    expect(session).toMatchObject({ id: answer.body.sessionId, destroyed_at: null, app_session_id: 'ios-recording', first_batch_id: 0, total_sensor_readings_written: 60 })
    expect(session.metadata).toEqual({
      source: 'sensor-logger', transport: 'http', appSessionId: 'ios-recording', deviceId: 'device-1', accelerationSource: 'accelerometer+gravity', accelerationUnits: 'm/s^2'
    })

    const stored = await storedReadings(answer.body.sessionId)
    expect(stored).toHaveLength(60)
    const expected = []
    for (let i = 0; i < 20; i++) {
      const micros = String((T0 + BigInt(i) * STEP) / 1000n)
      const [acc, gravity, gyro, mag] = [xyz(i, 0.5), xyz(i + 100, 9.8), xyz(i + 200), xyz(i + 300, 40)]
      expected.push({ micros, sensor: 'Accelerometer', x: acc.x + gravity.x, y: acc.y + gravity.y, z: acc.z + gravity.z })
      expected.push({ micros, sensor: 'Gyroscope', ...gyro })
      expected.push({ micros, sensor: 'Magnetometer', ...mag })
    }
    expect(stored).toEqual(expected)
    // The nanoseconds below the microsecond are dropped, not rounded: 123_457 ns past the millisecond is 123 µs.
    expect(stored[0]?.micros.endsWith('123')).toBe(true)
  })

  it('records an Android phone\'s totalacceleration as the Accelerometer and skips its accelerometer, gravity and barometer, whatever the Content-Type', async () => {
    const tester = await recorder()
    const first = await push(app, tester.key, messageText(0, 'android-recording', androidEntries(10)), 'text/plain; charset=utf-8')
    // Skipped per instant: accelerometer (no gravity), gravity and barometer.
    expect(first.body).toMatchObject({ status: 'written', written: 30, skipped: 30 })
    const second = await push(app, tester.key, messageText(1, 'android-recording', androidEntries(10, 10)), null)
    expect(second.body).toMatchObject({ status: 'written', sessionId: first.body.sessionId, batchId: 1, written: 30, skipped: 30, totalSensorReadingsWritten: 60 })
    const third = await push(app, tester.key, messageText(2, 'android-recording', androidEntries(1, 20)), 'application/octet-stream')
    expect(third.body).toMatchObject({ status: 'written', written: 3 })

    const [session] = await sessionsOf(app.db, tester.user.id)
    expect(session.metadata.accelerationSource).toBe('totalacceleration')
    const accelerometer = (await storedReadings(first.body.sessionId)).filter(r => r.sensor === 'Accelerometer')
    expect(accelerometer).toHaveLength(21)
    expect(accelerometer[5]).toEqual({ micros: String((T0 + 5n * STEP) / 1000n), sensor: 'Accelerometer', ...xyz(5, 9.8) })
  })

  it('answers a message with nothing to record with 200, written 0 and what it skipped', async () => {
    const tester = await recorder()
    const answer = await push(app, tester.key, messageText(0, 'gps-only', iosEntries(1).filter(e => e.name === 'location' || e.name === 'battery')))
    expect(answer).toMatchObject({ statusCode: 200, body: { status: 'nothing_to_record', batchId: 0, written: 0, skipped: 2 } })
  })

  it('records with a Bearer access token too, for beta testers only', async () => {
    const tester = await createUserWithToken(app)
    const admin = await createUserWithToken(app, 'ADMIN')
    const headers = { ...bearer(tester.token), 'content-type': 'application/json' }
    const answer = await app.inject({ method: 'POST', url: '/ingest/sensor-logger', headers, payload: messageText(0, 'bearer', iosEntries(2)) })
    expect(answer.statusCode).toBe(200)
    expect(answer.json()).toMatchObject({ status: 'written', written: 6 })
    const refused = await app.inject({ method: 'POST', url: '/ingest/sensor-logger', headers: { ...bearer(admin.token), 'content-type': 'application/json' }, payload: TEST_PUSH })
    expect(refused.statusCode).toBe(403)
    expect((await app.inject({ method: 'POST', url: '/ingest/sensor-logger', payload: TEST_PUSH })).statusCode).toBe(401)
  })
})

describe('retries and the session rules', () => {
  it('acknowledges a retried messageId without writing it twice', async () => {
    const tester = await recorder()
    const body = messageText(7, 'retry', iosEntries(5))
    const first = await push(app, tester.key, body)
    expect(first.body).toMatchObject({ status: 'written', batchId: 7, written: 15 })
    const before = await pushCount(app, 'duplicate')
    const again = await push(app, tester.key, body)
    expect(again).toMatchObject({ statusCode: 200, body: { status: 'duplicate', sessionId: first.body.sessionId, batchId: 7, written: 0, totalSensorReadingsWritten: 15 } })
    expect(await readingCount(app.db, first.body.sessionId)).toBe(15)
    const { rows } = await app.db.query('select batch_id from session_batches where session_id = $1', [first.body.sessionId])
    expect(rows).toEqual([{ batch_id: 7 }])
    expect(await pushCount(app, 'duplicate')).toBe(before + 1)
  })

  it('ends the previous session (reason client) when the app starts a new recording, and refuses a late message of the old one', async () => {
    const tester = await recorder()
    const old = await push(app, tester.key, messageText(0, 'morning', iosEntries(3)))
    const next = await push(app, tester.key, messageText(0, 'evening', iosEntries(3, 100)))
    expect(next.body).toMatchObject({ status: 'written', written: 9 })
    expect(next.body.sessionId).not.toBe(old.body.sessionId)
    const [ended, active] = await sessionsOf(app.db, tester.user.id)
    expect(ended).toMatchObject({ id: old.body.sessionId, destroy_reason: 'client', app_session_id: 'morning' })
    expect(active).toMatchObject({ id: next.body.sessionId, destroyed_at: null, app_session_id: 'evening' })

    const stale = await pushCount(app, 'stale_app_session')
    const late = await push(app, tester.key, messageText(1, 'morning', iosEntries(3, 3)))
    expect(late).toMatchObject({ statusCode: 409, body: { error: 'STALE_APP_SESSION', message: expect.any(String) } })
    expect(await pushCount(app, 'stale_app_session')).toBe(stale + 1)
    // No flip: the new recording is still the active one, the old one stays ended with what it had.
    const after = await sessionsOf(app.db, tester.user.id)
    expect(after).toHaveLength(2)
    expect(after[1]).toMatchObject({ id: next.body.sessionId, destroyed_at: null })
    expect(await readingCount(app.db, old.body.sessionId)).toBe(9)
    expect((await push(app, tester.key, messageText(1, 'evening', iosEntries(3, 103)))).body).toMatchObject({ status: 'written', sessionId: next.body.sessionId })
  })

  it('refuses pushes while the user records over the WebSocket, and leaves that session alone', async () => {
    const tester = await recorder()
    const phone = await TestPhone.connect(wsUrl(app), bearer(tester.token))
    phones.push(phone)
    phone.send('create_session', {})
    const created = await phone.expect('session_created')
    const answer = await push(app, tester.key, messageText(0, 'while-ws', iosEntries(2)))
    expect(answer).toMatchObject({ statusCode: 409, body: { error: 'RECORDING_ELSEWHERE' } })
    const sessions = await sessionsOf(app.db, tester.user.id)
    expect(sessions).toHaveLength(1)
    expect(sessions[0]).toMatchObject({ id: created.sessionId, destroyed_at: null, app_session_id: null })
    phone.send('destroy_session', {})
    await phone.expect('session_destroyed')
  })

  it('answers 400 INVALID_PUSH with the path of each problem, and a revoked key 401', async () => {
    const tester = await recorder()
    const notJson = await push(app, tester.key, 'messageId=1')
    expect(notJson).toMatchObject({ statusCode: 400, body: { error: 'INVALID_PUSH', issues: [{ path: [], message: expect.any(String) }] } })
    const badId = await push(app, tester.key, '{"messageId":-1,"sessionId":"s","payload":[]}')
    expect(badId.body.issues).toEqual([expect.objectContaining({ path: ['messageId'] })])
    const empty = await push(app, tester.key, '', null)
    expect(empty.statusCode).toBe(400)
    const badAxis = await push(app, tester.key, messageText(0, 'bad-axis', [{ name: 'gyroscope', time: T0, values: { x: 'fast', y: 0, z: 0 } }]))
    expect(badAxis).toMatchObject({ statusCode: 400, body: { error: 'INVALID_PUSH', issues: [expect.objectContaining({ path: ['readings', 0, 'xAxis'] })] } })

    await app.inject({ method: 'DELETE', url: `/me/ingest-keys/${tester.keyId}`, headers: bearer(tester.token) })
    const before = await pushCount(app, 'unauthorized')
    expect(await push(app, tester.key, TEST_PUSH)).toMatchObject({ statusCode: 401, body: { error: 'UNAUTHORIZED' } })
    expect(await pushCount(app, 'unauthorized')).toBe(before + 1)
  })

  it('refuses the key as a Bearer token on GET /sessions', async () => {
    const tester = await recorder()
    expect((await app.inject({ url: '/sessions', headers: bearer(tester.key) })).statusCode).toBe(401)
    expect((await app.inject({ url: '/sessions', headers: bearer(tester.token) })).statusCode).toBe(200)
  })

  it(`refuses a body over ${PUSH_BODY_LIMIT} bytes with 413, unread`, async () => {
    const tester = await recorder()
    const big = messageText(0, 'big', [{ name: 'annotation', time: T0, values: { text: 'x'.repeat(PUSH_BODY_LIMIT) } }])
    const answer = await push(app, tester.key, big)
    expect(answer).toMatchObject({ statusCode: 413, body: { error: 'PAYLOAD_TOO_LARGE' } })
    expect(await sessionsOf(app.db, tester.user.id)).toEqual([])
  })
})

describe('one user\'s pushes and the others', () => {
  it('bounds the messages of one user in flight (429 with Retry-After); another user is not refused', async () => {
    const greedy = await recorder()
    const other = await recorder()
    const hold = await holdCommits(databaseUrl)
    let pending: Array<Promise<{ statusCode: number, body: Record<string, unknown> }>> = []
    let others: Promise<{ statusCode: number, body: Record<string, unknown> }> | undefined
    try {
      // PUSH_MAX_INFLIGHT_PER_USER (4) messages that cannot commit yet.
      pending = Array.from({ length: 4 }, (_, i) => push(app, greedy.key, messageText(i, 'greedy', iosEntries(5, i * 5))))
      await hold.waiters()
      await new Promise(resolve => setTimeout(resolve, 300))
      const refused = await push(app, greedy.key, messageText(4, 'greedy', iosEntries(5, 20)))
      expect(refused).toMatchObject({ statusCode: 429, body: { error: 'TOO_MANY_IN_FLIGHT' }, headers: { 'retry-after': '1' } })
      others = push(app, other.key, messageText(0, 'patient', iosEntries(5)))
      await new Promise(resolve => setTimeout(resolve, 200))
    } finally {
      await hold.release()
    }
    expect((await others)?.body).toMatchObject({ status: 'written', written: 15 })
    for (const answer of await Promise.all(pending)) expect(answer.body).toMatchObject({ status: 'written', written: 15 })
    const [session] = await sessionsOf(app.db, greedy.user.id)
    expect(await readingCount(app.db, session.id)).toBe(60)
  })
})

describe('limits and the session TTL', async () => {
  const shortUrl = await createTestDatabase()
  const short = await build(shortUrl, {
    SESSION_TTL_SECONDS: '2',
    // The expired session is found by the next message, not ended by the reaper first.
    SESSION_REAPER_INTERVAL_MS: '60000',
    PUSH_MAX_READINGS: '30',
    INGEST_MAX_BUFFERED_READINGS: '30'
  })

  it('continues a recording past the TTL in a new session linked to the previous one', async () => {
    const tester = await recorder(short)
    const first = await push(short, tester.key, messageText(0, 'long-ride', iosEntries(2)))
    expect(first.body).toMatchObject({ status: 'written', written: 6 })
    await new Promise(resolve => setTimeout(resolve, 2200))
    const second = await push(short, tester.key, messageText(1, 'long-ride', iosEntries(2, 2)))
    expect(second.body).toMatchObject({ status: 'written', written: 6, batchId: 1 })
    expect(second.body.sessionId).not.toBe(first.body.sessionId)
    const [previous, current] = await sessionsOf(short.db, tester.user.id)
    expect(previous).toMatchObject({ id: first.body.sessionId, destroy_reason: 'expired' })
    expect(current).toMatchObject({ id: second.body.sessionId, destroyed_at: null, app_session_id: 'long-ride', first_batch_id: 1 })
    expect(current.metadata).toMatchObject({ previousSessionId: first.body.sessionId, part: 2, appSessionId: 'long-ride' })
  })

  it('refuses a message with more motion readings than PUSH_MAX_READINGS with 413', async () => {
    const tester = await recorder(short)
    const answer = await push(short, tester.key, messageText(0, 'too-many', iosEntries(11)))
    expect(answer).toMatchObject({ statusCode: 413, body: { error: 'TOO_MANY_READINGS', message: expect.stringContaining('33') } })
    expect(await pushCount(short, 'too_many_readings')).toBe(1)
  })

  it('answers 503 with Retry-After while the pipeline is full, and takes the message once it drains', async () => {
    const filler = await recorder(short)
    const other = await recorder(short)
    const hold = await holdCommits(shortUrl)
    let filling
    try {
      filling = push(short, filler.key, messageText(0, 'fill', iosEntries(10)))
      await hold.waiters()
      const refused = await push(short, other.key, messageText(0, 'waits', iosEntries(1)))
      expect(refused).toMatchObject({ statusCode: 503, body: { error: 'INGEST_SATURATED' }, headers: { 'retry-after': '2' } })
    } finally {
      await hold.release()
    }
    expect((await filling).body).toMatchObject({ status: 'written', written: 30 })
    expect((await push(short, other.key, messageText(0, 'waits', iosEntries(1)))).body).toMatchObject({ status: 'written', written: 3 })
    expect(await pushCount(short, 'saturated')).toBe(1)
  })
})

describe('request logs', async () => {
  const lines: string[] = []
  const logUrl = await createTestDatabase()
  const proxy = TcpProxy.forUrl(logUrl)
  await proxy.start()
  afterAll(() => proxy.close())
  const { transport: _pretty, ...jsonOptions } = loggerOptions('trace')
  const logged = await build(proxy.url(logUrl), { LOG_LEVEL: 'trace' }, { logger: { ...jsonOptions, stream: { write: (line: string) => { lines.push(line) } } } })

  it('carry the route pattern and never the key, however it is spelled, whatever the answer', async () => {
    const tester = await recorder(logged)
    const revoked = await recorder(logged)
    await logged.inject({ method: 'DELETE', url: `/me/ingest-keys/${revoked.keyId}`, headers: bearer(revoked.token) })
    const everyCharEncoded = (key: string) => [...key].map(c => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')).join('')
    const before = lines.length

    expect((await push(logged, tester.key, messageText(0, 'logged', iosEntries(2)))).statusCode).toBe(200)
    expect((await push(logged, everyCharEncoded(tester.key), messageText(1, 'logged', iosEntries(2, 2)))).statusCode).toBe(200)
    expect((await push(logged, encodeURIComponent(tester.key).replace('_', '%5f'), messageText(2, 'logged', iosEntries(2, 4)))).statusCode).toBe(200)
    expect((await push(logged, tester.key, 'not json')).statusCode).toBe(400)
    expect((await push(logged, revoked.key, TEST_PUSH)).statusCode).toBe(401)
    expect((await push(logged, everyCharEncoded(revoked.key), TEST_PUSH)).statusCode).toBe(401)
    // No route: the wrong method, an extra segment, a malformed encoding.
    expect((await logged.inject({ url: `/ingest/sensor-logger/${tester.key}` })).statusCode).toBe(404)
    expect((await logged.inject({ method: 'POST', url: `/ingest/sensor-logger/${tester.key}/extra`, payload: TEST_PUSH })).statusCode).toBe(404)
    expect((await logged.inject({ method: 'POST', url: `/ingest/sensor-logger/${tester.key}%ZZ`, payload: TEST_PUSH })).statusCode).toBe(400)
    // The database gone: a 5xx, logged with its request.
    proxy.cut()
    try {
      expect((await push(logged, tester.key, TEST_PUSH)).statusCode).toBe(503)
    } finally {
      proxy.restore()
    }

    const parsed = lines.slice(before).map(line => JSON.parse(line))
    const urls = new Set(parsed.filter(line => line.req).map(line => line.req.url))
    expect(urls).toEqual(new Set(['/ingest/sensor-logger/:ingestKey', '/ingest/…']))
    expect(parsed.some(line => line.msg === 'Database unavailable.' && line.req.url === '/ingest/sensor-logger/:ingestKey')).toBe(true)
    expect(parsed.some(line => line.msg === 'Push message handled.')).toBe(true)
    const text = lines.join('')
    for (const key of [tester.key, revoked.key]) {
      const secret = key.slice(key.indexOf('_', 4) + 1)
      for (const spelling of [key, secret, encodeURIComponent(key), everyCharEncoded(key), everyCharEncoded(secret), secret.slice(0, 20)]) {
        expect(text).not.toContain(spelling)
        expect(text.toLowerCase()).not.toContain(spelling.toLowerCase())
      }
    }
  })
})
