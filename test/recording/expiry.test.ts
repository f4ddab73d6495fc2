import type { FastifyInstance } from 'fastify'
import { afterAll, describe, expect, it } from 'vitest'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { makeReadings, TestPhone, wsUrl } from '../ws-client.js'

const databaseUrl = await createTestDatabase()
const env = { SESSION_TTL_SECONDS: '2', SESSION_REAPER_INTERVAL_MS: '100' }
// Two instances of the service on one database, as behind a load balancer.
const first = await build(databaseUrl, env)
const second = await build(databaseUrl, env)
await first.listen({ port: 0, host: '127.0.0.1' })
await second.listen({ port: 0, host: '127.0.0.1' })

const phones: TestPhone[] = []
afterAll(async () => { await Promise.all(phones.map(phone => phone.close())) })

async function connect (app: FastifyInstance, token: string) {
  const phone = await TestPhone.connect(wsUrl(app), bearer(token))
  phones.push(phone)
  return phone
}

describe('expiry and several instances', () => {
  it('resumes a session created on one instance from the other', async () => {
    const tester = await createUserWithToken(first)
    const a = await connect(first, tester.token)
    a.send('create_session', {})
    const { sessionId } = await a.expect('session_created')
    const readings = makeReadings(375)
    a.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: readings })
    await a.expect('sensor_readings_batch_written')
    a.terminate()

    const b = await connect(second, tester.token)
    b.send('create_session', {})
    expect(await b.expect('session_already_exist')).toMatchObject({ sessionId })
    // The phone resends what it has no ack for: the same readings, acknowledged from the ledger.
    b.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: readings })
    expect(await b.expect('sensor_readings_batch_written')).toEqual({ sessionId, batchId: 0, totalSensorReadingsWritten: 375 })
    b.send('write_sensor_readings_batch', { batch_id: 1, sensor_readings: makeReadings(375) })
    expect(await b.expect('sensor_readings_batch_written')).toEqual({ sessionId, batchId: 1, totalSensorReadingsWritten: 750 })
  })

  it('ends every expired session exactly once and tells each phone, on whichever instance', async () => {
    const sessions: Array<{ phone: TestPhone, sessionId: unknown }> = []
    for (let i = 0; i < 6; i++) {
      const tester = await createUserWithToken(first)
      const phone = await connect(i % 2 === 0 ? first : second, tester.token)
      phone.send('create_session', {})
      sessions.push({ phone, sessionId: (await phone.expect('session_created')).sessionId })
    }
    for (const { phone, sessionId } of sessions) {
      const destroyed = await phone.expect('session_destroyed', 5000)
      expect(destroyed).toMatchObject({ sessionId, reason: 'expired', integrity: 'unreported', totalSensorReadingsWritten: 0 })
      phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: makeReadings(375) })
      expect(await phone.expect('session_not_found')).toEqual({})
      expect(phone.frames).toEqual([])
    }
    const { rows } = await first.db.query(
      'select destroyed_at = expires_at as at_expiry, destroy_reason from sessions where id = any($1::bigint[])',
      [sessions.map(s => s.sessionId)])
    expect(rows).toEqual(Array(6).fill({ at_expiry: true, destroy_reason: 'expired' }))
  })

  it('lets a phone start a new session after its old one expired', async () => {
    const tester = await createUserWithToken(first)
    const phone = await connect(second, tester.token)
    phone.send('create_session', {})
    const { sessionId: old } = await phone.expect('session_created')
    await first.db.query('update sessions set expires_at = now() where id = $1', [old])
    phone.send('create_session', {})
    const frames = [await phone.next(), await phone.next()]
    expect(frames[0]).toMatchObject({ event: 'session_destroyed', data: { sessionId: old, reason: 'expired' } })
    expect(frames[1]).toMatchObject({ event: 'session_created' })
    expect(frames[1]?.data.sessionId).not.toBe(old)
  })

  it('disconnects a deleted user\'s phone on the other instance too', async () => {
    const admin = await createUserWithToken(first, 'ADMIN')
    const tester = await createUserWithToken(first)
    const phone = await connect(second, tester.token)
    phone.send('create_session', {})
    await phone.expect('session_created')
    const deleted = await first.inject({ method: 'DELETE', url: `/users/${tester.user.id}`, headers: bearer(admin.token) })
    expect(deleted.json()).toMatchObject({ deleted: { users: 1, sessions: 1 } })
    await phone.closed
    expect(phone.closeCode).toBe(1008)
    expect(phone.closeReason).toContain('deleted')
  })
})
