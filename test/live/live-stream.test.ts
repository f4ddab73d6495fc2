import type { FastifyInstance } from 'fastify'
import { afterAll, describe, expect, it } from 'vitest'
import { liveIngestObserver } from '../../src/live/live-observer.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { makeReadings, TestPhone, wsUrl } from '../ws-client.js'
import { httpOrigin, SseReader, type SseEvent } from './sse-client.js'

const databaseUrl = await createTestDatabase()
// Two instances on one database, as behind a load balancer: a phone records on one, a watcher reads the other.
const env = { SENSOR_READINGS_BATCH_SIZE: '30' }
const recorder = await build(databaseUrl, env)
const watcher = await build(databaseUrl, { ...env, LIVE_MAX_STREAMS_PER_USER: '2', LIVE_MAX_STREAMS: '4' })
await recorder.listen({ port: 0, host: '127.0.0.1' })
await watcher.listen({ port: 0, host: '127.0.0.1' })

const admin = await createUserWithToken(recorder, 'ADMIN')
const alice = await createUserWithToken(recorder, 'BETATESTER')

const streams: SseReader[] = []
const phones: TestPhone[] = []
afterAll(async () => {
  for (const stream of streams) stream.close()
  await Promise.all(phones.map(phone => phone.close()))
})

async function openStream (app: FastifyInstance, token: string): Promise<SseReader> {
  const stream = await SseReader.open(`${httpOrigin(app)}/live`, bearer(token))
  streams.push(stream)
  await stream.waitFor(event => event.event === 'hello')
  return stream
}

async function startRecording (token: string): Promise<{ phone: TestPhone, sessionId: number }> {
  const phone = await TestPhone.connect(wsUrl(recorder), bearer(token))
  phones.push(phone)
  phone.send('create_session', {})
  const { sessionId } = await phone.expect('session_created')
  return { phone, sessionId: sessionId as number }
}

const batchOf = (sessionId: number, total: number) => (event: SseEvent) =>
  event.event === 'batch' && (event.data as { sessionId: number }).sessionId === sessionId &&
  (event.data as { counts: { total: number } }).counts.total === total

describe('GET /live', () => {
  it('tells a watcher on another instance of each committed batch, with the running total, within a second', async () => {
    const stream = await openStream(watcher, admin.token)
    expect(stream.response.headers['content-type']).toBe('text/event-stream; charset=utf-8')
    expect(stream.events[0]).toEqual({ event: 'hello', data: { listening: true, maxStreamSeconds: 900 } })
    const { phone, sessionId } = await startRecording(alice.token)
    for (let batch = 0; batch < 3; batch++) {
      phone.send('write_sensor_readings_batch', { batch_id: batch, sensor_readings: makeReadings(30, Date.now() - 60_000 + batch * 1000) })
      await phone.expect('sensor_readings_batch_written')
      const acknowledged = performance.now()
      const event = await stream.waitFor(batchOf(sessionId, 30 * (batch + 1)), 1000)
      expect(performance.now() - acknowledged).toBeLessThan(1000)
      expect(event.data).toEqual({ sessionId, userId: alice.user.id, batchId: batch, counts: { batch: 30, total: 30 * (batch + 1) } })
    }
    stream.close()
  })

  it('shows a beta tester their own sessions only, and an admin everyone\'s', async () => {
    const ann = await createUserWithToken(recorder, 'BETATESTER')
    const ben = await createUserWithToken(recorder, 'BETATESTER')
    const annStream = await openStream(watcher, ann.token)
    const benStream = await openStream(watcher, ben.token)
    const adminStream = await openStream(recorder, admin.token)
    try {
      const bens = await startRecording(ben.token)
      bens.phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: makeReadings(30) })
      await bens.phone.expect('sensor_readings_batch_written')
      const anns = await startRecording(ann.token)
      anns.phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: makeReadings(30) })
      await anns.phone.expect('sensor_readings_batch_written')
      await benStream.waitFor(batchOf(bens.sessionId, 30))
      await adminStream.waitFor(batchOf(bens.sessionId, 30))
      await adminStream.waitFor(batchOf(anns.sessionId, 30))
      // Ann's own batch came after Ben's, on the same connection: had Ben's been sent to her, it would be here.
      await annStream.waitFor(batchOf(anns.sessionId, 30))
      expect(annStream.events.filter(event => event.event === 'batch').map(event => (event.data as { userId: number }).userId)).toEqual([ann.user.id])
      expect(benStream.events.filter(event => event.event === 'batch').map(event => (event.data as { userId: number }).userId)).toEqual([ben.user.id])
    } finally {
      for (const stream of [annStream, benStream, adminStream]) stream.close()
    }
  })

  it('needs a token in the Authorization header, never in the URL', async () => {
    const origin = httpOrigin(watcher)
    expect((await fetch(`${origin}/live`)).status).toBe(401)
    expect((await fetch(`${origin}/live?access_token=${encodeURIComponent(alice.token)}`)).status).toBe(401)
  })

  it('bounds the streams of one user and of the instance', async () => {
    const carol = await createUserWithToken(recorder, 'BETATESTER')
    const dave = await createUserWithToken(recorder, 'BETATESTER')
    await waitUntil(() => watcher.live.hub.size === 0)
    const open = [await openStream(watcher, carol.token), await openStream(watcher, carol.token)]
    const third = await fetch(`${httpOrigin(watcher)}/live`, { headers: bearer(carol.token) })
    expect(third.status).toBe(429)
    expect(((await third.json()) as { error: string }).error).toBe('TOO_MANY_STREAMS')
    // Two of Dave's fill the instance's four.
    open.push(await openStream(watcher, dave.token), await openStream(watcher, dave.token))
    const erin = await createUserWithToken(recorder, 'BETATESTER')
    const full = await fetch(`${httpOrigin(watcher)}/live`, { headers: bearer(erin.token) })
    expect(full.status).toBe(503)
    expect(((await full.json()) as { error: string }).error).toBe('LIVE_BUSY')
    // A closed stream frees its place.
    open[0]?.close()
    await waitUntil(() => watcher.live.hub.size < 4)
    const again = await openStream(watcher, erin.token)
    for (const stream of [...open, again]) stream.close()
    await waitUntil(() => watcher.live.hub.size === 0)
  })

  it('says when its notification connection was lost and when it listens again, and carries on', async () => {
    await waitUntil(() => watcher.live.hub.size === 0)
    const stream = await openStream(watcher, admin.token)
    // Ends the watcher's listening connection, as a database restart or a network cut would.
    const pid = watcher.live.channel.backendPid
    expect(pid).toEqual(expect.any(Number))
    await watcher.db.query('select pg_terminate_backend($1)', [pid])
    await stream.waitFor(event => event.event === 'status' && (event.data as { listening: boolean }).listening === false)
    await stream.waitFor(event => event.event === 'status' && (event.data as { listening: boolean }).listening === true, 5000)
    const { phone, sessionId } = await startRecordingFresh()
    phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: makeReadings(30) })
    await phone.expect('sensor_readings_batch_written')
    await stream.waitFor(batchOf(sessionId, 30))
    stream.close()
  })

  it('ends its streams when the server closes, instead of holding the close', async () => {
    const lone = await build(databaseUrl)
    await lone.listen({ port: 0, host: '127.0.0.1' })
    const stream = await openStream(lone, admin.token)
    const started = performance.now()
    await lone.close()
    await stream.ending()
    expect(performance.now() - started).toBeLessThan(3000)
  })
})

describe('liveIngestObserver', () => {
  it('hands over a committed group\'s batches once, the newest per session with readings summed', () => {
    const published: unknown[][] = []
    const observer = liveIngestObserver(batches => published.push([...batches]))
    observer.batchWritten?.(10, { sessionId: 1, batchId: 0, totalSensorReadingsWritten: 10 })
    observer.batchWritten?.(20, { sessionId: 2, batchId: 4, totalSensorReadingsWritten: 120 })
    observer.batchWritten?.(5, { sessionId: 1, batchId: 1, totalSensorReadingsWritten: 15 })
    expect(published).toEqual([])
    observer.groupCommitted?.({ batches: 3, rows: 35, seconds: 0.01 })
    expect(published).toEqual([[
      { sessionId: 1, batchId: 1, readings: 15, total: 15 },
      { sessionId: 2, batchId: 4, readings: 20, total: 120 }
    ]])
    // A group that wrote nothing (all replays) publishes nothing.
    observer.groupCommitted?.({ batches: 1, rows: 0, seconds: 0.01 })
    expect(published).toHaveLength(1)
  })
})

/** A new beta tester's phone with a session (each user has at most one active session). */
async function startRecordingFresh () {
  const tester = await createUserWithToken(recorder, 'BETATESTER')
  return startRecording(tester.token)
}

async function waitUntil (test: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!test()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}
