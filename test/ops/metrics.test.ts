import { describe, expect, it } from 'vitest'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { makeReadings, TestPhone, wsUrl } from '../ws-client.js'

const METRICS_TOKEN = 'metrics-token-for-tests-0123456789'
const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl)
const guarded = await build(databaseUrl, { METRICS_TOKEN })
await app.listen({ port: 0, host: '127.0.0.1' })

const scrape = async () => (await app.inject({ url: '/metrics' })).body
const sample = (text: string, series: string) => {
  const line = text.split('\n').find(l => l.startsWith(series + ' '))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

async function until (condition: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

describe('GET /metrics', () => {
  it('serves Prometheus text with every service metric and the process metrics', async () => {
    const response = await app.inject({ url: '/metrics' })
    expect(response.statusCode).toBe(200)
    expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/)
    for (const [name, type] of [
      ['motion_ingest_readings_written_total', 'counter'],
      ['motion_ingest_batches_written_total', 'counter'],
      ['motion_ingest_batches_rejected_total', 'counter'],
      ['motion_ingest_batches_replayed_total', 'counter'],
      ['motion_ingest_batch_conflicts_total', 'counter'],
      ['motion_ingest_open_sockets', 'gauge'],
      ['motion_ingest_active_sessions', 'gauge'],
      ['motion_ingest_sessions_created_total', 'counter'],
      ['motion_ingest_sessions_ended_total', 'counter'],
      ['motion_ingest_commit_duration_seconds', 'histogram'],
      ['motion_ingest_rows_per_copy', 'histogram'],
      ['motion_ingest_session_reports_total', 'counter'],
      ['motion_ingest_session_report_duration_seconds', 'histogram'],
      ['process_cpu_user_seconds_total', 'counter'],
      ['process_resident_memory_bytes', 'gauge'],
      ['nodejs_eventloop_lag_seconds', 'gauge']
    ]) {
      expect(response.body, name).toContain(`# TYPE ${name} ${type}\n`)
    }
    expect(response.body).toContain('motion_ingest_sessions_ended_total{reason="expired"} 0')
  })

  it('counts what a real recording socket does: written, rejected and replayed batches, sessions, sockets', async () => {
    const { token } = await createUserWithToken(app)
    const phone = await TestPhone.connect(wsUrl(app), bearer(token))
    try {
      expect((await app.inject({ url: '/status' })).json().openSockets).toBe(1)
      phone.send('create_session', {})
      await phone.expect('session_created')
      // The resend carries the same readings: with others it would be a batch_conflict.
      const readings = makeReadings(375)
      phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: readings })
      phone.send('write_sensor_readings_batch', { batch_id: 1, sensor_readings: makeReadings(10) })
      phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: readings })
      await phone.expect('sensor_readings_batch_written')
      await phone.expect('invalid_sensor_readings_batch_size')
      await phone.expect('sensor_readings_batch_written')
      phone.send('destroy_session', { totalSensorReadingsSent: 375 })
      await phone.expect('session_destroyed')
    } finally {
      await phone.close()
    }
    const text = await scrape()
    expect(sample(text, 'motion_ingest_readings_written_total')).toBe(375)
    expect(sample(text, 'motion_ingest_batches_written_total')).toBe(1)
    expect(sample(text, 'motion_ingest_batches_replayed_total')).toBe(1)
    expect(sample(text, 'motion_ingest_batches_rejected_total{reason="batch_size"}')).toBe(1)
    expect(sample(text, 'motion_ingest_batches_rejected_total{reason="schema"}')).toBe(0)
    expect(sample(text, 'motion_ingest_sessions_created_total')).toBe(1)
    expect(sample(text, 'motion_ingest_sessions_ended_total{reason="client"}')).toBe(1)
    expect(sample(text, 'motion_ingest_commit_duration_seconds_count')).toBeGreaterThanOrEqual(1)
    expect(sample(text, 'motion_ingest_rows_per_copy_sum')).toBe(375)
    // makeReadings' clock is a minute behind but all three sensors are there: a complete report, with a warning.
    expect(sample(text, 'motion_ingest_session_reports_total{outcome="complete"}')).toBe(1)
    expect(sample(text, 'motion_ingest_session_reports_total{outcome="incomplete"}')).toBe(0)
    expect(sample(text, 'motion_ingest_session_report_duration_seconds_count')).toBe(1)
    await until(async () => (await app.inject({ url: '/status' })).json().openSockets === 0)
    expect(sample(await scrape(), 'motion_ingest_open_sockets')).toBe(0)

    // Each app has its own registry: the second app in this process saw none of it.
    const otherText = (await guarded.inject({ url: '/metrics', headers: bearer(METRICS_TOKEN) })).body
    expect(sample(otherText, 'motion_ingest_readings_written_total')).toBe(0)
  })

  it('counts active sessions in the database, in the metric and in /status', async () => {
    const { user } = await createUserWithToken(app)
    const { rows: [session] } = await app.db.query<{ id: number }>(
      'insert into sessions (user_id, expires_at) values ($1, now() + interval \'10 minutes\') returning id', [user.id])
    expect(sample(await scrape(), 'motion_ingest_active_sessions')).toBe(1)
    expect((await app.inject({ url: '/status' })).json().activeSessions).toBe(1)

    await app.db.query('update sessions set destroyed_at = now(), destroy_reason = \'client\', integrity = \'unreported\' where id = $1', [session!.id])
    expect(sample(await scrape(), 'motion_ingest_active_sessions')).toBe(0)
    expect((await app.inject({ url: '/status' })).json().activeSessions).toBe(0)
  })

  it('requires the bearer METRICS_TOKEN when one is configured', async () => {
    const { token: accessToken } = await createUserWithToken(guarded, 'ADMIN')
    for (const headers of [{}, bearer('wrong'), bearer(METRICS_TOKEN + 'x'), bearer(accessToken), { authorization: METRICS_TOKEN }]) {
      const response = await guarded.inject({ url: '/metrics', headers })
      expect(response.statusCode).toBe(401)
      expect(response.json()).toMatchObject({ error: 'UNAUTHORIZED' })
    }
    const ok = await guarded.inject({ url: '/metrics', headers: bearer(METRICS_TOKEN) })
    expect(ok.statusCode).toBe(200)
    expect(ok.body).toContain('# TYPE motion_ingest_readings_written_total counter')
  })
})
