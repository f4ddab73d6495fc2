import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { issueAccessToken } from '../../src/db/access-tokens-repository.js'
import { insertUser } from '../../src/db/users-repository.js'
import { createTestDatabase } from '../helper.js'
import { BATCH, expectExactRecording, Recorder } from './recorder.js'
import { freePort, killServerProcesses, startServerProcess, type ServerProcess } from '../fixtures/server-process.js'

const PHONES = 4
const BATCHES = 40

const databaseUrl = await createTestDatabase()
// A fixed port, so the restarted process is where the phones reconnect.
const port = await freePort()
const serverEnv = { DATABASE_URL: databaseUrl, PORT: String(port), LOG_LEVEL: 'info', WS_MAX_INFLIGHT_BATCHES: '16' }
const wsUrl = `ws://127.0.0.1:${port}/ws`
afterAll(() => killServerProcesses())

async function kill (server: ServerProcess, signal: NodeJS.Signals): Promise<void> {
  server.child.kill(signal)
  await server.exited
}
const db = new pg.Pool({ connectionString: databaseUrl, max: 2 })
afterAll(() => db.end())

async function betaTesterToken (n: number): Promise<string> {
  const user = await insertUser(db, { name: `Crash ${n}`, email: `crash-${n}@example.test`, publicKey: `crash-key-${n}`, role: 'BETATESTER' })
  return (await issueAccessToken(db, user.id, 3600)).accessToken
}

describe('the server killed with SIGKILL mid-stream', () => {
  it('loses no acknowledged batch and writes none twice once phones resume and resend', async () => {
    let server = await startServerProcess(serverEnv)
    const recorders = await Promise.all(Array.from({ length: PHONES }, async (_, n) => {
      const recorder = new Recorder(wsUrl, await betaTesterToken(n), BATCHES)
      expect(await recorder.connect()).toBe('session_created')
      return recorder
    }))
    const acks = () => recorders.reduce((sum, r) => sum + r.acked.size, 0)

    // Phones pipeline their batches; when a third are acknowledged, the process is killed outright.
    let killing: Promise<void> | undefined
    let unansweredAtKill = 0
    const watcher = setInterval(() => {
      if (!killing && acks() >= (PHONES * BATCHES) / 3) {
        unansweredAtKill = recorders.reduce((sum, r) => sum + r.everSent.size - r.acked.size, 0)
        killing = kill(server, 'SIGKILL')
      }
    }, 1)
    await Promise.all(recorders.map(r => r.stream(r.pending, 8)))
    clearInterval(watcher)
    await killing
    // Mid-stream: batches were on the wire or in a transaction when it died.
    expect(unansweredAtKill).toBeGreaterThan(0)
    expect(acks()).toBeLessThan(PHONES * BATCHES)
    await Promise.all(recorders.map(r => r.phone?.closed))
    for (const r of recorders) expect(r.phone?.closeCode).toBe(1006)

    // Nothing acknowledged was lost: the ledger holds every acked batch, each with all its readings.
    for (const r of recorders) {
      const { rows } = await db.query<{ batch_id: number }>('select batch_id from session_batches where session_id = $1', [r.sessionId])
      const written = new Set(rows.map(row => row.batch_id))
      for (const batchId of r.acked.keys()) expect(written.has(batchId)).toBe(true)
      const { rows: [count] } = await db.query('select count(*)::int as n from readings where session_id = $1', [r.sessionId])
      expect(count?.n).toBe(written.size * BATCH)
    }

    // Same port, new process: each phone resumes its session, resends what it has no ack for
    // (some of it committed before the kill, its ack lost), and ends it. It also resends its
    // last acknowledged batch, so the replay path runs on every run, not only when the kill
    // happened to fall between a COMMIT and its ack.
    server = await startServerProcess(serverEnv)
    await Promise.all(recorders.map(async r => {
      expect(await r.connect()).toBe('session_already_exist')
      const replay = r.acked.size > 0 ? [Math.max(...r.acked.keys())] : []
      await r.stream([...replay, ...r.pending], 8)
      expect(r.pending).toEqual([])
      expect(r.unavailable).toBe(0)
      expect(await r.destroy()).toMatchObject({ sessionId: r.sessionId, reason: 'client', totalSensorReadingsWritten: BATCHES * BATCH, integrity: 'ok' })
      await r.phone?.close()
    }))
    for (const r of recorders) await expectExactRecording(db, r)
    await kill(server, 'SIGTERM')
  })
})
