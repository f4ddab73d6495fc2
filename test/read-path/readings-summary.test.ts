import { describe, expect, it } from 'vitest'
import { generateReadings, insertReadings, insertSession, type ReadingFixture } from '../fixtures/sessions.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'

const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl)
const owner = await createUserWithToken(app, 'BETATESTER')
const stranger = await createUserWithToken(app, 'BETATESTER')
const admin = await createUserWithToken(app, 'ADMIN')

interface Summary {
  sessionId: number
  sessionFirst: string | null
  sessionLast: string | null
  from: string | null
  to: string | null
  bucketMicros: number
  buckets: number
  sensors: Array<{ sensor: string, readings: number, medianIntervalMs: number | null, buckets: number[][] }>
  gaps: Array<{ sensor: string, from: string, to: string, ms: number }>
  gapsTruncated: boolean
}

async function summary (sessionId: number, query = '', token = owner.token): Promise<Summary> {
  const response = await app.inject({ method: 'GET', url: `/sessions/${sessionId}/readings/summary${query}`, headers: bearer(token) })
  expect(response.statusCode, response.body).toBe(200)
  return response.json()
}

const at = (ms: number, micros = 0) => new Date(Date.UTC(2024, 4, 1, 8) + ms).toISOString().replace('Z', `${String(micros).padStart(3, '0')}Z`)

describe('GET /sessions/:id/readings/summary', () => {
  it('gives each bucket\'s count and each axis\'s min and max per sensor, from the first reading to just past the last', async () => {
    const id = await insertSession(app.db, owner.user.id)
    const readings: ReadingFixture[] = [
      { timestamp: at(0), sensor: 'Accelerometer', x: 1, y: -2, z: 9.81 },
      { timestamp: at(100), sensor: 'Accelerometer', x: 3, y: -5, z: 9.7 },
      { timestamp: at(100), sensor: 'Gyroscope', x: 0.5, y: 0.25, z: -0 },
      { timestamp: at(600), sensor: 'Accelerometer', x: -1, y: 0, z: 0.1 },
      { timestamp: at(999, 999), sensor: 'Gyroscope', x: 0.1, y: 0.2, z: 0.3 }
    ]
    await insertReadings(app.db, id, readings)
    const result = await summary(id, '?buckets=2')
    // 999.999 ms + 1 µs = 1 000 000 µs, cut in two.
    expect(result).toMatchObject({
      sessionId: id,
      sessionFirst: at(0, 0),
      sessionLast: at(999, 999),
      from: at(0, 0),
      to: at(1000, 0),
      bucketMicros: 500_000,
      buckets: 2,
      gaps: [],
      gapsTruncated: false
    })
    expect(result.sensors).toEqual([
      { sensor: 'Accelerometer', readings: 3, medianIntervalMs: expect.any(Number), buckets: [[0, 2, 1, 3, -5, -2, 9.7, 9.81], [1, 1, -1, -1, 0, 0, 0.1, 0.1]] },
      // A plot has no use for the sign of zero, which JSON drops (the readings routes keep it).
      { sensor: 'Gyroscope', readings: 2, medianIntervalMs: expect.any(Number), buckets: [[0, 1, 0.5, 0.5, 0.25, 0.25, 0, 0], [1, 1, 0.1, 0.1, 0.2, 0.2, 0.3, 0.3]] }
    ])
  })

  it('matches min and max computed from the rows themselves, at any bucket count and range', async () => {
    const id = await insertSession(app.db, owner.user.id)
    await generateReadings(app.db, id, 6000) // one a millisecond from 2024-01-01, sensors in turn
    const { rows } = await app.db.query<{ us: string, sensor: number, x: number, y: number, z: number }>(
      'select (extract(epoch from ts) * 1000000)::bigint::text as us, sensor, x, y, z from readings where session_id = $1', [id])
    const sensorNames = ['Accelerometer', 'Gyroscope', 'Magnetometer']
    for (const query of ['?buckets=7', '?buckets=1000', '?buckets=4000', '?buckets=13&from=2024-01-01T00:00:01.234567Z&to=2024-01-01T00:00:04Z']) {
      const result = await summary(id, query)
      const fromUs = BigInt(Date.parse(result.from as string)) * 1000n + BigInt((result.from as string).slice(23, 26))
      const toUs = BigInt(Date.parse(result.to as string)) * 1000n + BigInt((result.to as string).slice(23, 26))
      const expected = new Map<string, number[]>()
      for (const row of rows) {
        const us = BigInt(row.us)
        if (us < fromUs || us >= toUs) continue
        const bucket = Number((us - fromUs) / BigInt(result.bucketMicros))
        const key = `${row.sensor}:${bucket}`
        const seen = expected.get(key)
        if (!seen) expected.set(key, [bucket, 1, row.x, row.x, row.y, row.y, row.z, row.z])
        else {
          seen[1]!++
          seen[2] = Math.min(seen[2]!, row.x); seen[3] = Math.max(seen[3]!, row.x)
          seen[4] = Math.min(seen[4]!, row.y); seen[5] = Math.max(seen[5]!, row.y)
          seen[6] = Math.min(seen[6]!, row.z); seen[7] = Math.max(seen[7]!, row.z)
        }
      }
      for (const sensor of result.sensors) {
        const code = sensorNames.indexOf(sensor.sensor)
        const mine = [...expected.entries()].filter(([key]) => key.startsWith(`${code}:`)).map(([, value]) => value).sort((a, b) => a[0]! - b[0]!)
        expect(sensor.buckets, `${query} ${sensor.sensor}`).toEqual(mine)
        expect(sensor.readings).toBe(mine.reduce((sum, bucket) => sum + bucket[1]!, 0))
      }
      expect(result.sensors.length).toBe(new Set([...expected.keys()].map(key => key.split(':')[0])).size)
      expect(Math.max(...result.sensors.flatMap(sensor => sensor.buckets.map(bucket => bucket[0]!)))).toBeLessThan(result.buckets)
    }
  })

  it('locates gaps over 3x the median interval, per sensor, with the readings on either side', async () => {
    const id = await insertSession(app.db, owner.user.id)
    const readings: ReadingFixture[] = []
    // Accelerometer at 100 Hz for 2 s with 400 ms missing after 1 s; gyroscope steady at 50 Hz.
    for (let ms = 0; ms < 2000; ms += 10) {
      if (ms <= 1000 || ms >= 1400) readings.push({ timestamp: at(ms), sensor: 'Accelerometer', x: 1, y: 2, z: 3 })
    }
    for (let ms = 0; ms < 2000; ms += 20) readings.push({ timestamp: at(ms), sensor: 'Gyroscope', x: 0, y: 0, z: 0 })
    await insertReadings(app.db, id, readings)
    for (const buckets of [10, 100, 1000]) {
      const result = await summary(id, `?buckets=${buckets}`)
      expect(result.gaps, `${buckets} buckets`).toEqual([{ sensor: 'Accelerometer', from: at(1000, 0), to: at(1400, 0), ms: 400 }])
      expect(result.sensors.map(sensor => sensor.medianIntervalMs)).toEqual([10, 20])
    }
    // The last half second up to the newest reading (a live plot).
    const last = await summary(id, '?buckets=5&lastSeconds=0.5')
    expect(last).toMatchObject({ from: at(1490, 1), to: at(1990, 1), bucketMicros: 100_000 })
    expect(last.sensors.map(sensor => sensor.readings)).toEqual([50, 25])
    // A range inside the gap's neighbourhood finds it too; one after it does not.
    expect((await summary(id, `?buckets=50&from=${at(900)}&to=${at(1500)}`)).gaps).toHaveLength(1)
    expect((await summary(id, `?buckets=50&from=${at(1400)}&to=${at(2000)}`)).gaps).toEqual([])
  })

  it('measures gaps against the stored report\'s median once there is one', async () => {
    const id = await insertSession(app.db, owner.user.id)
    const readings: ReadingFixture[] = []
    for (let ms = 0; ms < 1000; ms += 10) readings.push({ timestamp: at(ms), sensor: 'Accelerometer', x: 1, y: 2, z: 3 })
    await insertReadings(app.db, id, readings)
    expect((await summary(id, '?buckets=100')).gaps).toEqual([])
    // A report whose median is 2 ms makes every 10 ms step a gap (3 x 2 < 10).
    await app.db.query(`insert into session_reports (session_id, complete, summary, report) values ($1, false, '{}'::jsonb,
      '{"sensors": {"Accelerometer": {"medianIntervalMs": 2}}}'::jsonb)`, [id])
    const result = await summary(id, '?buckets=10')
    expect(result.sensors[0]?.medianIntervalMs).toBe(2)
    // Only the steps that cross a bucket boundary are gaps a plot of 10 buckets can show.
    expect(result.gaps).toHaveLength(9)
  })

  it('answers an empty summary for a session without readings, and for a range without any', async () => {
    const id = await insertSession(app.db, owner.user.id, { destroyed: false })
    expect(await summary(id)).toMatchObject({ sessionFirst: null, sessionLast: null, from: null, to: null, sensors: [], gaps: [] })
    const ranged = await summary(id, `?from=${at(0)}&to=${at(1000)}&buckets=4`)
    expect(ranged).toMatchObject({ from: at(0, 0), to: at(1000, 0), bucketMicros: 250_000, sensors: [] })
  })

  it('shows a session to its owner and admins only, and refuses bad queries', async () => {
    const id = await insertSession(app.db, owner.user.id)
    expect((await summary(id, '', admin.token)).sessionId).toBe(id)
    const url = `/sessions/${id}/readings/summary`
    expect((await app.inject({ method: 'GET', url, headers: bearer(stranger.token) })).statusCode).toBe(404)
    expect((await app.inject({ method: 'GET', url })).statusCode).toBe(401)
    for (const query of [`lastSeconds=5&from=${at(0)}`, 'lastSeconds=0', 'buckets=0', 'buckets=4001', 'buckets=1.5', 'from=yesterday', `from=${at(10)}&to=${at(10)}`, `from=${at(10)}&to=${at(5)}`]) {
      const response = await app.inject({ method: 'GET', url: `${url}?${query}`, headers: bearer(owner.token) })
      expect(response.statusCode, query).toBe(400)
    }
  })

  // Its speed (under a second for a million readings) is the bench's first-plot phase, not a timed test.
  it('summarises a million readings into the buckets asked for, every reading counted', async () => {
    const id = await insertSession(app.db, owner.user.id)
    await generateReadings(app.db, id, 1_000_000)
    await app.db.query('analyze readings')
    const result: Summary | undefined = await summary(id, '?buckets=1200')
    expect(result?.sensors.map(sensor => sensor.readings)).toEqual([333_334, 333_333, 333_333])
    expect(result?.sensors[0]?.buckets).toHaveLength(1200)
  })
})
