import { afterEach, describe, expect, it } from 'vitest'
import { formatMicros } from '../../src/schemas/timestamps.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { makeReadings, TestPhone, wsUrl } from '../ws-client.js'

const BATCH = 30
const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl, { SENSOR_READINGS_BATCH_SIZE: String(BATCH) })
await app.listen({ port: 0, host: '127.0.0.1' })

const phones: TestPhone[] = []
afterEach(async () => {
  await Promise.all(phones.splice(0).map(phone => phone.close()))
})

async function connect (token: string): Promise<TestPhone> {
  const phone = await TestPhone.connect(wsUrl(app), bearer(token))
  phones.push(phone)
  return phone
}

/** A beta tester's phone with a session created (metadata as given). */
async function recording (metadata: Record<string, unknown> = {}) {
  const tester = await createUserWithToken(app, 'BETATESTER')
  const phone = await connect(tester.token)
  phone.send('create_session', { metadata })
  const { sessionId } = await phone.expect('session_created')
  return { tester, phone, sessionId: sessionId as number }
}

const labelsOf = async (sessionId: number, token: string) =>
  (await app.inject({ url: `/sessions/${sessionId}/labels`, headers: bearer(token) })).json()

describe('the label event', () => {
  it('records open labels while recording, each closed by the next, in frame order with batches', async () => {
    const { tester, phone, sessionId } = await recording({ activity: 'Walking' })
    const t0 = Date.now() - 30_000
    phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: makeReadings(BATCH, t0 - 1000) })
    phone.send('label', { startTime: t0 + 0.001, label: 'walking' })
    phone.send('label', { startTime: formatMicros((t0 + 5000) * 1000 + 7), label: 'Cycling', note: 'on the towpath' })
    expect(await phone.expect('sensor_readings_batch_written')).toMatchObject({ sessionId, batchId: 0 })
    const walking = await phone.expect('label_recorded')
    expect(walking).toEqual({
      sessionId, labelId: expect.any(Number), startTime: formatMicros(t0 * 1000 + 1), endTime: null, label: 'walking', duplicate: false, closedLabelId: null
    })
    const cycling = await phone.expect('label_recorded')
    expect(cycling).toMatchObject({ sessionId, startTime: formatMicros((t0 + 5000) * 1000 + 7), endTime: null, label: 'cycling', closedLabelId: walking.labelId })

    phone.send('destroy_session', { totalSensorReadingsSent: BATCH })
    await phone.expect('session_destroyed')
    const listed = await labelsOf(sessionId, tester.token)
    expect(listed).toMatchObject({ active: false, defaultLabel: 'walking', unmatchedActivity: null })
    expect(listed.labels.map((l: Record<string, unknown>) => [l.id, l.startTime, l.endTime, l.label, l.note, l.createdBy])).toEqual([
      [walking.labelId, formatMicros(t0 * 1000 + 1), formatMicros((t0 + 5000) * 1000 + 7), 'walking', null, tester.user.id],
      // Still open: it runs to the session's end, just after its last reading.
      [cycling.labelId, formatMicros((t0 + 5000) * 1000 + 7), null, 'cycling', 'on the towpath', tester.user.id]
    ])
  })

  it('acknowledges a resent label as a duplicate and stores it once', async () => {
    const { tester, phone, sessionId } = await recording()
    const frame = { startTime: Date.now() - 1000, endTime: Date.now(), label: 'still' }
    phone.send('label', frame)
    const first = await phone.expect('label_recorded')
    phone.send('label', frame)
    expect(await phone.expect('label_recorded')).toEqual({ ...first, duplicate: true })
    expect((await labelsOf(sessionId, tester.token)).labels).toHaveLength(1)
  })

  it('refuses an unknown label, an overlap and a label far from the session with label_refused', async () => {
    const { tester, phone, sessionId } = await recording()
    const now = Date.now()
    phone.send('label', { startTime: now - 2000, endTime: now - 1000, label: 'skiing' })
    expect(await phone.expect('label_refused')).toMatchObject({ sessionId, code: 'unknown_label', labelId: null, message: expect.stringContaining('cycling') })
    phone.send('label', { startTime: now - 2000, endTime: now - 1000, label: 'walking' })
    const stored = await phone.expect('label_recorded')
    phone.send('label', { startTime: now - 1500, endTime: now - 500, label: 'running' })
    expect(await phone.expect('label_refused')).toMatchObject({ sessionId, code: 'label_overlap', labelId: stored.labelId })
    phone.send('label', { startTime: now - 3_600_000, endTime: now - 3_500_000, label: 'walking' })
    expect(await phone.expect('label_refused')).toMatchObject({ sessionId, code: 'label_outside_session', labelId: null })
    phone.send('label', { startTime: now + 3_600_000, label: 'walking' })
    expect(await phone.expect('label_refused')).toMatchObject({ code: 'label_outside_session' })
    expect((await labelsOf(sessionId, tester.token)).labels).toHaveLength(1)
  })

  it('answers malformed label data with invalid_event_data, and keeps the socket', async () => {
    const { phone } = await recording()
    phone.send('label', { label: 'walking' })
    expect(await phone.expect('error')).toMatchObject({ code: 'invalid_event_data', issues: [{ path: ['startTime'] }] })
    // A misspelt endTime would otherwise make an open label without anyone noticing.
    phone.send('label', { startTime: Date.now() - 1000, end_time: Date.now(), label: 'walking' })
    expect(await phone.expect('error')).toMatchObject({ code: 'invalid_event_data' })
    phone.send('label', { startTime: Date.now(), endTime: Date.now() - 1000, label: 'walking' })
    expect(await phone.expect('error')).toMatchObject({ code: 'invalid_event_data', issues: [{ path: ['endTime'] }] })
    phone.send('label', { startTime: Date.now() - 1000, label: 'walking' })
    expect(await phone.expect('label_recorded')).toMatchObject({ label: 'walking' })
  })

  it('answers session_not_found without an active session, and labels the active one after a reconnect', async () => {
    const tester = await createUserWithToken(app, 'BETATESTER')
    const idle = await connect(tester.token)
    idle.send('label', { startTime: Date.now(), label: 'walking' })
    expect(await idle.expect('session_not_found')).toEqual({})

    const { tester: recorder, sessionId } = await recording()
    const reconnected = await connect(recorder.token)
    reconnected.send('label', { startTime: Date.now() - 1000, label: 'in_vehicle' })
    expect(await reconnected.expect('label_recorded')).toMatchObject({ sessionId, label: 'in_vehicle' })
  })

  it('is described in the OpenAPI page with its answers', async () => {
    const doc = (await app.inject({ url: '/docs/json' })).json()
    const text = JSON.stringify(doc)
    for (const event of ['label', 'label_recorded', 'label_refused']) expect(text).toContain(`| \`${event}\` |`)
  })
})
