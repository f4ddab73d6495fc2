import pg from 'pg'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { LIVE_CHANNEL, LiveChannel, type LiveNotice } from '../../src/db/live-channel.js'
import { insertSession } from '../fixtures/sessions.js'
import { build, createTestDatabase, createUserWithToken } from '../helper.js'

const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl)
const notices: LiveNotice[] = []
const channel = new LiveChannel({ connectionString: databaseUrl, onNotice: notice => notices.push(notice) })
await channel.start()
// A second listener counts the notifications themselves, as any instance's would arrive.
const counter = new pg.Client({ connectionString: databaseUrl })
counter.on('error', () => {})
await counter.connect()
const payloads: string[] = []
counter.on('notification', message => { if (message.channel === LIVE_CHANNEL && message.payload) payloads.push(message.payload) })
await counter.query(`listen ${LIVE_CHANNEL}`)
afterAll(async () => {
  await channel.close()
  await counter.end()
  await app.close()
})

describe('LiveChannel', () => {
  it('announces every session of a group, up to 40 sessions a notification', async () => {
    const { user } = await createUserWithToken(app)
    const sessionIds: number[] = []
    for (let i = 0; i < 100; i++) sessionIds.push(await insertSession(app.db, user.id))

    channel.publish(sessionIds.map((sessionId, i) => ({ sessionId, batchId: i, readings: 375, total: 375 * (i + 1) })))

    await vi.waitFor(() => expect(notices).toHaveLength(100), { timeout: 5000, interval: 20 })
    expect(notices.map(notice => notice.sessionId).sort((a, b) => a - b)).toEqual([...sessionIds].sort((a, b) => a - b))
    const last = notices.find(notice => notice.sessionId === sessionIds[99])
    expect(last).toEqual({ sessionId: sessionIds[99], userId: user.id, batchId: 99, counts: { batch: 375, total: 37_500 } })
    // 100 sessions in 3 notifications, each within NOTIFY's 8,000-byte payload.
    await vi.waitFor(() => expect(payloads).toHaveLength(3), { timeout: 5000, interval: 20 })
    expect(payloads.map(payload => (JSON.parse(payload) as unknown[]).length).sort((a, b) => a - b)).toEqual([20, 40, 40])
    for (const payload of payloads) expect(Buffer.byteLength(payload)).toBeLessThan(8000)
  })

  it('reads a single notice, as an instance of an earlier version sends it', async () => {
    notices.length = 0
    const single = { sessionId: 1, userId: 2, batchId: 3, counts: { batch: 375, total: 750 } }
    await counter.query('select pg_notify($1, $2)', [LIVE_CHANNEL, JSON.stringify(single)])
    await vi.waitFor(() => expect(notices).toEqual([single]), { timeout: 5000, interval: 20 })
  })
})
