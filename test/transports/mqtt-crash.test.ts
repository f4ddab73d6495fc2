import { randomBytes } from 'node:crypto'
import mqtt, { type MqttClient } from 'mqtt'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { issueAccessToken } from '../../src/db/access-tokens-repository.js'
import { mintIngestKey } from '../../src/db/ingest-keys-repository.js'
import { insertUser } from '../../src/db/users-repository.js'
import { mosquittoOrSkip, startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js'
import { iosEntries, messageText } from '../fixtures/sensor-logger-messages.js'
import { freePort, killServerProcesses, startServerProcess, type LogLine, type ServerProcess } from '../fixtures/server-process.js'
import { createTestDatabase } from '../helper.js'

const binary = mosquittoOrSkip()
const broker: Mosquitto | undefined = binary === undefined ? undefined : await startMosquitto(binary)
afterAll(() => broker?.stop())
afterAll(() => killServerProcesses())

const INSTANTS = 5 // 15 readings a message
const databaseUrl = broker ? await createTestDatabase() : ''
const db = new pg.Pool({ connectionString: databaseUrl, max: 2 })
afterAll(() => db.end())

// A fixed port and client id: the restarted process is the same instance to the broker, which resumes its session.
const port = broker ? await freePort() : 0
const serverEnv = {
  DATABASE_URL: databaseUrl,
  PORT: String(port),
  LOG_LEVEL: 'info',
  MQTT_URL: broker?.tcpUrl ?? '',
  MQTT_TOPIC: 'crash/+',
  MQTT_CLIENT_ID: `mi-crash-${randomBytes(3).toString('hex')}`
}
const subscribed = (line: LogLine) => line.msg === 'MQTT subscribed.' || line.msg === 'MQTT session resumed.'

async function start (): Promise<ServerProcess> {
  const server = await startServerProcess(serverEnv)
  await server.waitForLog(subscribed)
  return server
}

async function kill (server: ServerProcess): Promise<void> {
  server.child.kill('SIGKILL')
  await server.exited
}

const publishers: MqttClient[] = []
afterAll(async () => { await Promise.all(publishers.map(client => client.endAsync())) })

/** A phone: Sensor Logger publishing over WebSockets to its own topic. */
async function phone (key: string): Promise<{ publish: (body: string, qos: 0 | 1) => Promise<void> }> {
  const client = await mqtt.connectAsync(broker!.wsUrl, { protocolVersion: 4, clientId: `sl-${randomBytes(4).toString('hex')}`, reconnectPeriod: 0 })
  publishers.push(client)
  return { publish: async (body, qos) => { await client.publishAsync(`crash/${key}`, body, { qos }) } }
}

let testerCount = 0
async function tester () {
  const n = ++testerCount
  const user = await insertUser(db, { name: `MQTT crash ${n}`, email: `mqtt-crash-${n}@example.test`, publicKey: `mqtt-crash-key-${n}`, role: 'BETATESTER' })
  const minted = await mintIngestKey(db, user.id, 'crash phone', 10)
  if (minted.status !== 'minted') throw new Error(`no key: ${minted.status}`)
  return { user, key: minted.key.key }
}

const storedBatches = async (): Promise<number> =>
  (await db.query<{ n: number }>('select count(*)::int as n from session_batches')).rows[0]?.n ?? 0

async function eventually<T> (probe: () => Promise<T>, accept: (value: T) => boolean, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (accept(value)) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(value)}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

/** A transaction holding the batch ledger: every batch commit waits until release(). */
async function holdCommits () {
  const client = new pg.Client({ connectionString: databaseUrl })
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

const pause = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/** Missing ids from 0 to `highest` as [first, last] ranges. */
function missingRanges (present: Set<number>, highest: number): Array<[number, number]> {
  const ranges: Array<[number, number]> = []
  for (let id = 0; id <= highest; id++) {
    if (present.has(id)) continue
    const last = ranges.at(-1)
    if (last && last[1] === id - 1) last[1] = id
    else ranges.push([id, id])
  }
  return ranges
}

let server: ServerProcess | undefined

describe.skipIf(!broker)('the service killed with SIGKILL while phones publish over MQTT', () => {
  it('stores every QoS 1 message exactly once after a restart with the same client id', async () => {
    const PHONES = 4
    const MESSAGES = 100
    server = await start()
    const testers = await Promise.all(Array.from({ length: PHONES }, () => tester()))
    const phones = await Promise.all(testers.map(t => phone(t.key)))

    // Each phone publishes a message every 40 ms. Once a quarter is stored, commits are held for
    // a moment, so that messages the service has received wait for their commit, and the process
    // is killed outright; it stays dead while the phones go on and comes back under the same
    // client id. Acknowledging a message before its commit would lose those.
    let restarted: Promise<ServerProcess> | undefined
    let storedAtKill = 0
    const killMidCommit = async (dying: ServerProcess) => {
      const held = await holdCommits()
      try {
        await pause(300)
        storedAtKill = await storedBatches()
        await kill(dying)
      } finally {
        await held.release()
      }
      return start()
    }
    const watcher = setInterval(() => {
      if (restarted) return
      storedBatches().then(n => {
        if (restarted || n < (PHONES * MESSAGES) / 4) return
        restarted = killMidCommit(server as ServerProcess)
      }, () => {})
    }, 20)
    await Promise.all(phones.map(async (p, t) => {
      for (let m = 0; m < MESSAGES; m++) {
        await p.publish(messageText(m, `crash-qos1-${t}`, iosEntries(INSTANTS, m * INSTANTS)), 1)
        await pause(40)
      }
    }))
    clearInterval(watcher)
    expect(restarted).toBeDefined()
    server = await (restarted as Promise<ServerProcess>)
    // Mid-stream: most messages were published after the kill.
    expect(storedAtKill).toBeLessThan(PHONES * MESSAGES / 2)

    await eventually(storedBatches, n => n >= PHONES * MESSAGES, 'every message stored')
    await pause(500) // anything resent late would show as a second copy now
    for (const t of testers) {
      const { rows: sessions } = await db.query<{ id: number }>('select id from sessions where user_id = $1', [t.user.id])
      expect(sessions).toHaveLength(1)
      const sessionId = (sessions[0] as { id: number }).id
      const { rows: [counts] } = await db.query<{ batches: number, distinct_ids: number, highest: number, readings: number }>(
        `select count(*)::int as batches, count(distinct batch_id)::int as distinct_ids, max(batch_id)::int as highest,
                (select count(*)::int from readings where session_id = $1) as readings
         from session_batches where session_id = $1`, [sessionId])
      expect(counts).toEqual({ batches: MESSAGES, distinct_ids: MESSAGES, highest: MESSAGES - 1, readings: MESSAGES * INSTANTS * 3 })
    }
    const secrets = testers.map(t => t.key.slice(t.key.indexOf('_', 4) + 1))
    const logs = JSON.stringify(server.logs)
    for (const secret of secrets) expect(logs).not.toContain(secret)
  }, 120_000)

  it('at QoS 0 loses what was published while no instance was subscribed, and the report shows those batches as lost', async () => {
    const MESSAGES = 80
    const t = await tester()
    const p = await phone(t.key)
    const published = new Map<number, 'up' | 'down'>()
    const publish = async (m: number, state: 'up' | 'down') => {
      await p.publish(messageText(m, 'crash-qos0', iosEntries(INSTANTS, m * INSTANTS)), 0)
      published.set(m, state)
      await pause(30)
    }
    const sessionOf = async () => (await db.query<{ id: number, first_batch_id: number }>('select id, first_batch_id from sessions where user_id = $1 and app_session_id = $2', [t.user.id, 'crash-qos0'])).rows[0]
    const storedIds = async () => {
      const session = await sessionOf()
      if (!session) return new Set<number>()
      return new Set((await db.query<{ batch_id: number }>('select batch_id from session_batches where session_id = $1', [session.id])).rows.map(row => row.batch_id))
    }

    // The recording starts while the service is down: its first messages go nowhere.
    await kill(server as ServerProcess)
    let m = 0
    for (; m < 5; m++) await publish(m, 'down')
    server = await start()
    for (; m < 30; m++) await publish(m, 'up')
    await eventually(storedIds, ids => ids.size >= 20, 'twenty stored')
    // Down again mid-recording, for a while.
    await kill(server)
    for (let end = m + 10; m < end; m++) await publish(m, 'down')
    const restarting = start()
    for (; m < MESSAGES - 10; m++) await publish(m, 'up') // some of these reach the broker before the service subscribes again
    server = await restarting
    for (; m < MESSAGES; m++) await publish(m, 'up')
    await eventually(storedIds, ids => ids.has(MESSAGES - 1), 'the last message stored')

    const ids = await storedIds()
    const downIds = [...published].filter(([, state]) => state === 'down').map(([id]) => id)
    for (const id of downIds) expect(ids.has(id)).toBe(false)
    const lost = MESSAGES - ids.size
    expect(lost).toBeGreaterThanOrEqual(downIds.length)
    const session = await sessionOf()
    // The session starts at the first message that arrived.
    expect(session?.first_batch_id).toBe(5)

    // The app's next recording ends this one (reason client), which computes its report.
    await p.publish(messageText(0, 'crash-qos0-next', iosEntries(INSTANTS)), 0)
    const { accessToken } = await issueAccessToken(db, t.user.id, 3600)
    const report = await eventually(async () => {
      const response = await fetch(`${(server as ServerProcess).baseUrl}/sessions/${session?.id}/report`, { headers: { authorization: `Bearer ${accessToken}` } })
      return { status: response.status, body: await response.json() as Record<string, any> }
    }, r => r.status === 200, 'the report of the ended session')
    // Lost batches count from the session's first batch id (5), the first message that arrived:
    // the app does not promise that message ids start at 0, so the first five messages, published
    // while the service was down, cannot be told from ids the app never used. firstBatchId shows it.
    const fromFirst = [...downIds].filter(id => id >= 5).length
    expect(report.body.batches).toMatchObject({ written: ids.size, highestBatchId: MESSAGES - 1, firstBatchId: 5, lost: lost - 5, lostRangesTruncated: false })
    expect(report.body.batches.lostRanges).toEqual(missingRanges(ids, MESSAGES - 1).filter(([first]: [number, number]) => first >= 5))
    expect(lost - 5).toBeGreaterThanOrEqual(fromFirst)
    expect(report.body.summary).toMatchObject({ complete: false, lostBatches: lost - 5 })
    expect(report.body.summary.problems).toContain('lost_batches')
    await kill(server as ServerProcess)
  }, 120_000)
})
