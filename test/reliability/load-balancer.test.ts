import http from 'node:http'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { issueAccessToken } from '../../src/db/access-tokens-repository.js'
import { insertUser } from '../../src/db/users-repository.js'
import { haproxyOrSkip, startLoadBalancer } from '../fixtures/haproxy.js'
import { killServerProcesses, startServerProcess, type ServerProcess } from '../fixtures/server-process.js'
import { createTestDatabase } from '../helper.js'
import { BATCH, expectExactRecording, Recorder } from './recorder.js'

// Two real service processes behind the real HAProxy, with the configuration
// deploy/haproxy/haproxy.cfg ships: the instances share nothing but the database.
const BATCHES = 40
const binary = haproxyOrSkip()

describe.skipIf(!binary)('two instances behind HAProxy', () => {
  let instances: ServerProcess[] = []
  let lb: Awaited<ReturnType<typeof startLoadBalancer>>
  let db: pg.Pool

  beforeAll(async () => {
    const databaseUrl = await createTestDatabase()
    // Both start on the empty database at once: migrations run once, under their lock.
    const env = { DATABASE_URL: databaseUrl, LOG_LEVEL: 'info', WS_MAX_INFLIGHT_BATCHES: '16' }
    instances = await Promise.all([startServerProcess(env), startServerProcess(env)])
    lb = await startLoadBalancer(binary!, instances.map((instance, i) => ({ name: `instance-${i + 1}`, port: instance.port })))
    db = new pg.Pool({ connectionString: databaseUrl, max: 2 })
  }, 60_000)
  afterAll(async () => {
    await lb?.stop()
    await killServerProcesses()
    await db?.end()
  })

  async function betaTesterToken (n: number): Promise<string> {
    const user = await insertUser(db, { name: `LB ${n}`, email: `lb-${n}@example.test`, publicKey: `lb-key-${n}`, role: 'BETATESTER' })
    return (await issueAccessToken(db, user.id, 3600)).accessToken
  }

  /** Recording sockets each instance holds, asked of the instances directly. */
  async function openSockets (): Promise<number[]> {
    return await Promise.all(instances.map(async instance => {
      const response = await fetch(`${instance.baseUrl}/status`)
      return ((await response.json()) as { openSockets: number }).openSockets
    }))
  }

  it('passes the client\'s address to the instance in X-Forwarded-For, not one the client made up', async () => {
    // From 127.0.0.2, so the address the instance logs can only have come from HAProxy's header
    // (HAProxy itself connects from 127.0.0.1, a TRUST_PROXY address by default).
    const { port } = new URL(lb.baseUrl)
    const status = await new Promise<number>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/status', localAddress: '127.0.0.2', headers: { 'x-forwarded-for': '203.0.113.9' } }, response => {
        response.resume()
        response.on('end', () => resolve(response.statusCode ?? 0))
      }).on('error', reject)
    })
    expect(status).toBe(200)
    const logged = await Promise.any(instances.map(instance => instance.waitForLog(line =>
      line.msg === 'incoming request' && (line.req as { url?: string } | undefined)?.url === '/status', 5000)))
    expect((logged.req as { remoteAddress: string }).remoteAddress).toBe('127.0.0.2')
  })

  it('a recording survives its instance being killed: the phone resumes through HAProxy on the other instance, and every count is exact', async () => {
    const recorder = new Recorder(lb.wsUrl, await betaTesterToken(1), BATCHES)
    expect(await recorder.connect()).toBe('session_created')
    const before = await openSockets()
    expect([...before].sort()).toEqual([0, 1])
    const holder = instances[before.indexOf(1)]!
    const survivor = instances.find(instance => instance !== holder)!
    const holderName = `instance-${instances.indexOf(holder) + 1}`

    // Pipelined batches; when a third are acknowledged, the instance holding the socket is killed outright.
    let unansweredAtKill = 0
    let killed: Promise<unknown> | undefined
    const watcher = setInterval(() => {
      if (!killed && recorder.acked.size >= BATCHES / 3) {
        unansweredAtKill = recorder.everSent.size - recorder.acked.size
        holder.child.kill('SIGKILL')
        killed = holder.exited
      }
    }, 1)
    await recorder.stream(recorder.pending, 8)
    clearInterval(watcher)
    await killed
    expect(unansweredAtKill).toBeGreaterThan(0)
    expect(recorder.acked.size).toBeLessThan(BATCHES)
    await recorder.phone?.closed
    // HAProxy passes the loss on as an abnormal close, as the instance's own socket would.
    expect(recorder.phone?.closeCode).toBe(1006)
    const ackedAtKill = new Set(recorder.acked.keys())

    // Nothing acknowledged by the dead instance was lost.
    const { rows } = await db.query<{ batch_id: number }>('select batch_id from session_batches where session_id = $1', [recorder.sessionId])
    const written = new Set(rows.map(row => row.batch_id))
    for (const batchId of ackedAtKill) expect(written.has(batchId)).toBe(true)

    // Same address, HAProxy picks the survivor: the session resumes there. The phone resends what it
    // has no ack for, plus its last acknowledged batch, so the replay path runs on every run.
    expect(await recorder.connect()).toBe('session_already_exist')
    await lb.waitForDown(holderName)
    expect((await fetch(`${survivor.baseUrl}/status`).then(response => response.json()) as { openSockets: number }).openSockets).toBe(1)
    await recorder.stream([Math.max(...ackedAtKill), ...recorder.pending], 8)
    expect(recorder.pending).toEqual([])
    expect(recorder.unavailable).toBe(0)
    // Every ack's running total counts each batch once, the replayed one included.
    expect(recorder.acked.get(BATCHES - 1)).toBe(BATCHES * BATCH)
    expect(await recorder.destroy()).toMatchObject({ sessionId: recorder.sessionId, reason: 'client', totalSensorReadingsWritten: BATCHES * BATCH, integrity: 'ok' })
    await recorder.phone?.close()

    // readings rows = ledger = session total = what was acknowledged, each batch once and whole.
    const acknowledged = recorder.acked.size * BATCH
    expect(acknowledged).toBe(BATCHES * BATCH)
    await expectExactRecording(db, recorder)
  }, 60_000)
})
