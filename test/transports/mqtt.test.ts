import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import mqtt, { type MqttClient } from 'mqtt'
import pg from 'pg'
import { afterAll, describe, expect, it, onTestFinished } from 'vitest'
import { buildApp } from '../../src/app.js'
import { loggerOptions } from '../../src/logger.js'
import type { PushOutcome } from '../../src/recording/push-observer.js'
import type { RetryReason } from '../../src/transports/mqtt-subscriber.js'
import { mosquittoOrSkip, startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js'
import { androidEntries, iosEntries, messageText, TEST_PUSH } from '../fixtures/sensor-logger-messages.js'
import { TcpProxy } from '../fixtures/tcp-proxy.js'
import { bearer, build, createTestDatabase, createUserWithToken, testConfig } from '../helper.js'

const binary = mosquittoOrSkip()
const broker: Mosquitto | undefined = binary === undefined ? undefined : await startMosquitto(binary)
afterAll(() => broker?.stop())

const run = randomBytes(3).toString('hex')
const databaseUrl = broker ? await createTestDatabase() : ''

/** Env of an app subscribed to this file's broker; each app gets its own client id, and a topic prefix unless it shares one. */
const mqttEnv = (name: string, env: Record<string, string> = {}) => ({
  MQTT_URL: broker?.tcpUrl ?? '',
  MQTT_CLIENT_ID: `mi-test-${run}-${name}`,
  MQTT_TOPIC: `${name}/+`,
  ...env
})

// A database behind a proxy the outage test cuts.
const outageUrl = broker ? await createTestDatabase() : ''
const proxy = TcpProxy.forUrl(outageUrl || 'postgres://127.0.0.1:5432/none')
if (broker) await proxy.start()
afterAll(() => broker ? proxy.close() : undefined)

const lines: string[] = []
const { transport: _pretty, ...jsonOptions } = loggerOptions('debug')
const app = broker ? await build(databaseUrl, { ...mqttEnv('main'), LOG_LEVEL: 'debug' }, { logger: { ...jsonOptions, stream: { write: (line: string) => { lines.push(line) } } } }) : undefined as unknown as FastifyInstance
if (broker) await app.mqtt?.whenSubscribed

const publishers: MqttClient[] = []
afterAll(async () => { await Promise.all(publishers.map(client => client.endAsync())) })

/** A publisher as Sensor Logger is: MQTT 3.1.1 over WebSockets. */
async function publisher (): Promise<MqttClient> {
  const client = await mqtt.connectAsync(broker!.wsUrl, { protocolVersion: 4, clientId: `sensor-logger-${randomBytes(4).toString('hex')}`, reconnectPeriod: 0 })
  publishers.push(client)
  return client
}

/** An app built inside a test, closed when the test ends (build() closes after the file, for apps built outside tests). */
async function buildForTest (url: string, env: Record<string, string>): Promise<FastifyInstance> {
  const built = await buildApp(testConfig(url, env), { logger: false })
  onTestFinished(() => built.close())
  await built.ready()
  return built
}

async function recorder (target: FastifyInstance = app) {
  const tester = await createUserWithToken(target)
  const minted = await target.inject({ method: 'POST', url: '/me/ingest-keys', headers: bearer(tester.token), payload: { label: 'mqtt phone' } })
  expect(minted.statusCode).toBe(201)
  return { ...tester, key: minted.json().key as string, keyId: minted.json().id as number }
}

async function eventually<T> (probe: () => Promise<T> | T, accept: (value: T) => boolean, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (accept(value)) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(value)}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

async function pushCount (target: FastifyInstance, outcome: PushOutcome): Promise<number> {
  const { values } = await target.metrics.pushMessages.get()
  return values.find(value => value.labels.transport === 'mqtt' && value.labels.outcome === outcome)?.value ?? 0
}

async function retryCount (target: FastifyInstance, reason: RetryReason): Promise<number> {
  const { values } = await target.metrics.mqttRetries.get()
  return values.find(value => value.labels.reason === reason)?.value ?? 0
}

const sessionsOf = async (db: FastifyInstance['db'], userId: number) =>
  (await db.query('select * from sessions where user_id = $1 order by id', [userId])).rows

async function stored (db: FastifyInstance['db'], userId: number): Promise<{ batches: number, readings: number }> {
  const { rows: [row] } = await db.query<{ batches: number, readings: number }>(
    `select (select count(*)::int from session_batches b join sessions s on s.id = b.session_id where s.user_id = $1) as batches,
            (select count(*)::int from readings r join sessions s on s.id = r.session_id where s.user_id = $1) as readings`, [userId])
  return row ?? { batches: 0, readings: 0 }
}

/** A transaction holding the batch ledger: every batch commit waits until release() (reads go on). */
async function holdCommits (url: string) {
  const client = new pg.Client({ connectionString: url })
  client.on('error', () => {})
  await client.connect()
  await client.query('begin')
  await client.query('lock table session_batches in exclusive mode')
  return {
    release: async () => {
      await client.query('commit')
      await client.end()
    }
  }
}

const status = (target: FastifyInstance = app) => target.mqtt!.status()

describe.skipIf(!broker)('Sensor Logger over MQTT: the documented messages', () => {
  it('answers the app\'s test message without starting a session', async () => {
    const tester = await recorder()
    const phone = await publisher()
    const before = await pushCount(app, 'test')
    await phone.publishAsync(`main/${tester.key}`, TEST_PUSH, { qos: 0 })
    await eventually(() => pushCount(app, 'test'), n => n === before + 1, 'the test message')
    expect(await sessionsOf(app.db, tester.user.id)).toEqual([])
  })

  it('records an iPhone\'s messages published at QoS 0, as the app publishes, in a session marked mqtt', async () => {
    const tester = await recorder()
    const phone = await publisher()
    for (let m = 0; m < 3; m++) await phone.publishAsync(`main/${tester.key}`, messageText(m, 'ios-mqtt', iosEntries(20, m * 20)), { qos: 0 })
    await eventually(() => stored(app.db, tester.user.id), s => s.batches === 3, 'three batches')
    expect(await stored(app.db, tester.user.id)).toEqual({ batches: 3, readings: 180 })
    const [session] = await sessionsOf(app.db, tester.user.id)
    expect(session).toMatchObject({ destroyed_at: null, app_session_id: 'ios-mqtt', first_batch_id: 0, total_sensor_readings_written: 180 })
    expect(session.metadata).toEqual({
      source: 'sensor-logger', transport: 'mqtt', appSessionId: 'ios-mqtt', deviceId: 'device-1', accelerationSource: 'accelerometer+gravity', accelerationUnits: 'm/s^2'
    })
    // Nanoseconds are read as digits: 123_457 ns past the millisecond is stored as 123 µs.
    const { rows: [first] } = await app.db.query<{ micros: string }>(
      'select (extract(epoch from ts) * 1000000)::bigint::text as micros from readings where session_id = $1 order by ts limit 1', [session.id])
    expect(first?.micros.endsWith('123')).toBe(true)
  })

  it('records an Android phone\'s totalacceleration, gyroscope and magnetometer at QoS 1 and skips the other sensors', async () => {
    const tester = await recorder()
    const phone = await publisher()
    await phone.publishAsync(`main/${tester.key}`, messageText(0, 'android-mqtt', androidEntries(10)), { qos: 1 })
    await phone.publishAsync(`main/${tester.key}`, messageText(1, 'android-mqtt', androidEntries(10, 10)), { qos: 1 })
    await eventually(() => stored(app.db, tester.user.id), s => s.batches === 2, 'two batches')
    expect(await stored(app.db, tester.user.id)).toEqual({ batches: 2, readings: 60 })
    const [session] = await sessionsOf(app.db, tester.user.id)
    expect(session.metadata).toMatchObject({ transport: 'mqtt', accelerationSource: 'totalacceleration' })
    const { rows } = await app.db.query<{ sensor: number, n: number }>('select sensor, count(*)::int as n from readings where session_id = $1 group by sensor order by sensor', [session.id])
    expect(rows).toEqual([{ sensor: 0, n: 20 }, { sensor: 1, n: 20 }, { sensor: 2, n: 20 }])
  })
})

describe.skipIf(!broker)('Sensor Logger over MQTT: retries, sessions and refusals', () => {
  it('stores a message published again with the same messageId once, at QoS 0 and 1 alike', async () => {
    const tester = await recorder()
    const phone = await publisher()
    const body = messageText(4, 'resent', iosEntries(5))
    const duplicates = await pushCount(app, 'duplicate')
    await phone.publishAsync(`main/${tester.key}`, body, { qos: 1 })
    await eventually(() => stored(app.db, tester.user.id), s => s.batches === 1, 'the first copy')
    await phone.publishAsync(`main/${tester.key}`, body, { qos: 1 })
    await phone.publishAsync(`main/${tester.key}`, body, { qos: 0 })
    await phone.publishAsync(`main/${tester.key}`, body, { qos: 1 })
    await eventually(() => pushCount(app, 'duplicate'), n => n === duplicates + 3, 'three duplicates')
    expect(await stored(app.db, tester.user.id)).toEqual({ batches: 1, readings: 15 })
  })

  it('ends the previous session (reason client) when a message of a new app recording arrives, and drops a late one of the old', async () => {
    const tester = await recorder()
    const phone = await publisher()
    await phone.publishAsync(`main/${tester.key}`, messageText(0, 'first-ride', iosEntries(3)), { qos: 1 })
    await eventually(() => stored(app.db, tester.user.id), s => s.batches === 1, 'the first recording')
    await phone.publishAsync(`main/${tester.key}`, messageText(0, 'second-ride', iosEntries(3, 100)), { qos: 1 })
    await eventually(() => stored(app.db, tester.user.id), s => s.batches === 2, 'the second recording')
    const [ended, active] = await sessionsOf(app.db, tester.user.id)
    expect(ended).toMatchObject({ app_session_id: 'first-ride', destroy_reason: 'client' })
    expect(active).toMatchObject({ app_session_id: 'second-ride', destroyed_at: null })

    const stale = await pushCount(app, 'stale_app_session')
    const acked = status().acked
    await phone.publishAsync(`main/${tester.key}`, messageText(1, 'first-ride', iosEntries(3, 3)), { qos: 1 })
    await eventually(() => pushCount(app, 'stale_app_session'), n => n === stale + 1, 'the late message refused')
    await eventually(() => status().acked, n => n === acked + 1, 'its PUBACK')
    expect(await stored(app.db, tester.user.id)).toEqual({ batches: 2, readings: 18 })
  })

  it('acknowledges, counts and drops a revoked key\'s message and a bad body, writing nothing and never logging the key', async () => {
    const tester = await recorder()
    const revoked = await recorder()
    const gone = await app.inject({ method: 'DELETE', url: `/me/ingest-keys/${revoked.keyId}`, headers: bearer(revoked.token) })
    expect(gone.statusCode).toBe(200)
    const phone = await publisher()
    const [unauthorized, invalid, acked] = [await pushCount(app, 'unauthorized'), await pushCount(app, 'invalid'), status().acked]
    const before = lines.length

    await phone.publishAsync(`main/${revoked.key}`, messageText(0, 'revoked', iosEntries(3)), { qos: 1 })
    await phone.publishAsync(`main/${tester.key}`, 'not json', { qos: 1 })
    await phone.publishAsync(`main/${tester.key}`, messageText(0, 'bad-axis', iosEntries(1)).replace('"x":', '"x":"north","_x":'), { qos: 1 })
    await phone.publishAsync('main/not-a-key', TEST_PUSH, { qos: 0 })
    await eventually(() => status().acked, n => n === acked + 3, 'three PUBACKs')
    await eventually(() => pushCount(app, 'unauthorized'), n => n === unauthorized + 2, 'both unknown keys counted')
    expect(await pushCount(app, 'invalid')).toBe(invalid + 2)
    expect(status().acksWaiting).toBe(0)
    expect(await sessionsOf(app.db, revoked.user.id)).toEqual([])
    expect(await stored(app.db, tester.user.id)).toEqual({ batches: 0, readings: 0 })

    const logged = lines.slice(before).map(line => JSON.parse(line))
    expect(logged.some(line => String(line.msg).startsWith('MQTT message with an unknown or revoked ingest key') && line.topic === `main/mik_${revoked.keyId}_…`)).toBe(true)
    expect(logged.some(line => String(line.msg).startsWith('MQTT message refused') && line.outcome === 'invalid' && line.topic === `main/mik_${tester.keyId}_…`)).toBe(true)
    expect(logged.some(line => line.topic === 'main/…')).toBe(true)
    const text = lines.join('')
    for (const key of [tester.key, revoked.key]) {
      const secret = key.slice(key.indexOf('_', 4) + 1)
      expect(text).not.toContain(secret.slice(0, 12))
    }
  })
})

describe.skipIf(!broker)('Sensor Logger over MQTT: acknowledgements and concurrency', () => {
  it('handles many messages at once and sends each PUBACK only after its commit', async () => {
    const testers = await Promise.all(Array.from({ length: 12 }, () => recorder()))
    const phone = await publisher()
    const acked = status().acked
    const held = await holdCommits(databaseUrl)
    try {
      await Promise.all(testers.flatMap((tester, t) => [0, 1].map(m =>
        phone.publishAsync(`main/${tester.key}`, messageText(m, `concurrent-${t}`, iosEntries(5, m * 5)), { qos: 1 }))))
      // Serialised handling would show one message at a time here, waiting for the held commit;
      // each phone's second message waits for its first (one topic's messages keep their order).
      await eventually(() => status(), s => s.inFlight === 24 && s.handling === 12, '24 messages taken, 12 handled at once')
      expect(status().acked).toBe(acked)
    } finally {
      await held.release()
    }
    await eventually(() => status().acked, n => n === acked + 24, 'every PUBACK')
    expect(status().maxHandling).toBeGreaterThanOrEqual(12)
    for (const tester of testers) expect(await stored(app.db, tester.user.id)).toEqual({ batches: 2, readings: 30 })
  })

  it('holds at most MQTT_MAX_INFLIGHT messages at once and stores every one', async () => {
    const bounded = await buildForTest(databaseUrl, mqttEnv('bounded', { MQTT_MAX_INFLIGHT: '4' }))
    await bounded.mqtt!.whenSubscribed
    const testers = await Promise.all(Array.from({ length: 12 }, () => recorder(bounded)))
    const phone = await publisher()
    const held = await holdCommits(databaseUrl)
    try {
      await Promise.all(testers.map((tester, t) => phone.publishAsync(`bounded/${tester.key}`, messageText(0, `bounded-${t}`, iosEntries(2)), { qos: 1 })))
      await eventually(() => status(bounded).handling, n => n === 4, 'four in flight')
      await new Promise(resolve => setTimeout(resolve, 300))
      expect(status(bounded)).toMatchObject({ inFlight: 4, handling: 4, maxHandling: 4, acked: 0 })
    } finally {
      await held.release()
    }
    await eventually(() => status(bounded).acked, n => n === 12, 'every PUBACK')
    expect(status(bounded).maxHandling).toBe(4)
    for (const tester of testers) expect(await stored(bounded.db, tester.user.id)).toEqual({ batches: 1, readings: 6 })
  })

  it('tries again, rather than drops, a message beyond the user\'s in-flight limit', async () => {
    const tester = await recorder()
    const phone = await publisher()
    await phone.publishAsync(`main/${tester.key}`, messageText(0, 'crowded', iosEntries(2)), { qos: 1 })
    await eventually(() => stored(app.db, tester.user.id), s => s.batches === 1, 'the session\'s first message')
    const retries = await retryCount(app, 'too_many_in_flight')
    const held = await holdCommits(databaseUrl)
    let pushes: Array<Promise<{ statusCode: number }>> = []
    try {
      // The same recording over HTTP push takes the user's PUSH_MAX_INFLIGHT_PER_USER (4) places, its commits held.
      pushes = [1, 2, 3, 4].map(m => app.inject({
        method: 'POST', url: `/ingest/sensor-logger/${tester.key}`, headers: { 'content-type': 'application/json' }, payload: messageText(m, 'crowded', iosEntries(2, m * 2))
      }))
      await eventually(() => app.recording.push.receive(tester.user.id, TEST_PUSH, 'http'), result => result.status === 'too_many_in_flight', 'the user\'s places taken')
      await phone.publishAsync(`main/${tester.key}`, messageText(5, 'crowded', iosEntries(2, 10)), { qos: 1 })
      await phone.publishAsync(`main/${tester.key}`, messageText(6, 'crowded', iosEntries(2, 12)), { qos: 0 })
      await eventually(() => retryCount(app, 'too_many_in_flight'), n => n > retries, 'a retry')
    } finally {
      await held.release()
    }
    for (const push of pushes) expect((await push).statusCode).toBe(200)
    await eventually(() => stored(app.db, tester.user.id), s => s.batches === 7, 'all seven batches')
    expect(await stored(app.db, tester.user.id)).toEqual({ batches: 7, readings: 42 })
  })
})

describe.skipIf(!broker)('Sensor Logger over MQTT: storage unavailable', () => {
  it('does not acknowledge a message while the database is down, stores it once it is back, and the broker never resends it', async () => {
    const env = mqttEnv('outage')
    const first = await buildForTest(proxy.url(outageUrl), env)
    await first.mqtt!.whenSubscribed
    const tester = await recorder(first)
    const phone = await publisher()

    proxy.cut()
    try {
      await phone.publishAsync(`outage/${tester.key}`, messageText(0, 'outage', iosEntries(4)), { qos: 1 })
      await phone.publishAsync(`outage/${tester.key}`, messageText(1, 'outage', iosEntries(4, 4)), { qos: 0 })
      await eventually(() => retryCount(first, 'storage_unavailable'), n => n >= 2, 'retries')
      // The QoS 0 message waits behind the QoS 1 one: one topic's messages keep their order.
      expect(status(first)).toMatchObject({ acked: 0, acksWaiting: 1, inFlight: 2, handling: 1 })
    } finally {
      proxy.restore()
    }
    await eventually(() => status(first).acked, n => n === 1, 'the PUBACK after the commit', 20_000)
    await eventually(() => stored(first.db, tester.user.id), s => s.batches === 2, 'both messages', 20_000)
    expect(await stored(first.db, tester.user.id)).toEqual({ batches: 2, readings: 24 })
    expect(await pushCount(first, 'written')).toBe(2)
    await first.close()

    // The same client id again: the broker resumes the session and has nothing to resend.
    const second = await buildForTest(proxy.url(outageUrl), env)
    await second.mqtt!.whenSubscribed
    await new Promise(resolve => setTimeout(resolve, 500))
    expect(await pushCount(second, 'duplicate')).toBe(0)
    expect(status(second).acked).toBe(0)
    await phone.publishAsync(`outage/${tester.key}`, messageText(2, 'outage', iosEntries(4, 8)), { qos: 1 })
    await eventually(() => stored(second.db, tester.user.id), s => s.batches === 3, 'the next message')
  })
})

describe.skipIf(!broker)('Sensor Logger over MQTT: instances sharing a subscription', () => {
  it('hands each message to one instance of the group', async () => {
    const env = (name: string) => mqttEnv(name, { MQTT_TOPIC: 'shared/+', MQTT_SHARE_GROUP: `group-${run}` })
    const [a, b] = [await buildForTest(databaseUrl, env('shared-a')), await buildForTest(databaseUrl, env('shared-b'))]
    await Promise.all([a.mqtt!.whenSubscribed, b.mqtt!.whenSubscribed])
    const tester = await recorder(a)
    const phone = await publisher()
    await phone.publishAsync(`shared/${tester.key}`, messageText(0, 'shared', iosEntries(2)), { qos: 1 })
    await eventually(() => stored(a.db, tester.user.id), s => s.batches === 1, 'the first message')
    for (let m = 1; m < 20; m++) await phone.publishAsync(`shared/${tester.key}`, messageText(m, 'shared', iosEntries(2, m * 2)), { qos: 1 })
    await eventually(() => stored(a.db, tester.user.id), s => s.batches === 20, 'twenty batches')
    const handled = async (target: FastifyInstance) => await pushCount(target, 'written') + await pushCount(target, 'duplicate')
    const [byA, byB] = [await handled(a), await handled(b)]
    expect(byA + byB).toBe(20)
    expect(byA).toBeGreaterThan(0)
    expect(byB).toBeGreaterThan(0)
    expect(await pushCount(a, 'duplicate') + await pushCount(b, 'duplicate')).toBe(0)
  })
})

describe.skipIf(!broker)('Sensor Logger over MQTT: the broker restarting', () => {
  it('reconnects, subscribes again (the broker kept no session) and records again', async () => {
    const tester = await recorder()
    const subscribedBefore = lines.filter(line => line.includes('"msg":"MQTT subscribed."')).length
    await broker!.restart()
    await eventually(() => lines.filter(line => line.includes('"msg":"MQTT subscribed."')).length, n => n === subscribedBefore + 1, 'a new subscription')
    expect(status().connected).toBe(true)
    expect((await app.metrics.mqttConnected.get()).values[0]?.value).toBe(1)
    const phone = await publisher()
    await phone.publishAsync(`main/${tester.key}`, messageText(0, 'after-restart', iosEntries(3)), { qos: 0 })
    await eventually(() => stored(app.db, tester.user.id), s => s.batches === 1, 'the message after the restart')
    expect(lines.some(line => line.includes('"msg":"MQTT disconnected; reconnecting."'))).toBe(true)
  })
})

describe.skipIf(!broker)('Sensor Logger over MQTT: a broker that queues QoS 0 messages', () => {
  it('stores a QoS 0 message published while the instance was away once it is back under the same client id (queue_qos0_messages true)', async () => {
    const queueing = await startMosquitto(binary as string, ['queue_qos0_messages true'])
    onTestFinished(() => queueing.stop())
    const env = { MQTT_URL: queueing.tcpUrl, MQTT_CLIENT_ID: `mi-test-${run}-queued`, MQTT_TOPIC: 'queued/+' }
    const first = await buildForTest(databaseUrl, env)
    await first.mqtt!.whenSubscribed
    const tester = await recorder(first)
    await first.close()

    const phone = await mqtt.connectAsync(queueing.wsUrl, { protocolVersion: 4, reconnectPeriod: 0 })
    publishers.push(phone)
    await phone.publishAsync(`queued/${tester.key}`, messageText(0, 'queued', iosEntries(3)), { qos: 0 })
    const second = await buildForTest(databaseUrl, env)
    await second.mqtt!.whenSubscribed
    await eventually(() => stored(second.db, tester.user.id), s => s.batches === 1, 'the queued message')
  })
})
