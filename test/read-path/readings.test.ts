import { describe, expect, it, vi } from 'vitest'
import { CSV_HEADER } from '../../src/db/readings/readings-export.js'
import { type SensorReadingOutput } from '../../src/schemas/readings.js'
import { SENSORS } from '../../src/schemas/sensors.js'
import { generateReadings, insertReadings, insertSession, type ReadingFixture } from '../fixtures/sessions.js'
import { buildApp } from '../../src/app.js'
import { bearer, build, createTestDatabase, createUserWithToken, testConfig } from '../helper.js'

const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl)
const admin = await createUserWithToken(app, 'ADMIN')
const owner = await createUserWithToken(app, 'BETATESTER')
const stranger = await createUserWithToken(app, 'BETATESTER')

// What the phone sent, and the timestamp the read path must give back for it.
const awkward: Array<ReadingFixture & { expected: string }> = [
  { timestamp: '2024-05-01T10:00:00.123456+02:00', expected: '2024-05-01T08:00:00.123456Z', sensor: 'Accelerometer', x: 0.1 + 0.2, y: 1e-300, z: 5e-324 },
  { timestamp: '2024-05-01T08:00:00.123457Z', expected: '2024-05-01T08:00:00.123457Z', sensor: 'Gyroscope', x: 1.7976931348623157e308, y: -1.7976931348623157e308, z: -0 },
  { timestamp: '2024-05-01T08:00:00.1234575Z', expected: '2024-05-01T08:00:00.123458Z', sensor: 'Magnetometer', x: 2.2250738585072014e-308, y: 1e21, z: 123456789.12345679 },
  { timestamp: '2024-04-30T23:00:00.000001-09:30', expected: '2024-05-01T08:30:00.000001Z', sensor: 'Accelerometer', x: -9.806649999999999, y: 0, z: 1 / 3 },
  { timestamp: '2024-05-01T08:30:00Z', expected: '2024-05-01T08:30:00.000000Z', sensor: 'Gyroscope', x: Math.PI, y: -Math.E, z: 4.9406564584124654e-324 },
  { timestamp: '2024-05-01T08:30:00.999999Z', expected: '2024-05-01T08:30:00.999999Z', sensor: 'Magnetometer', x: 0.000001, y: 1e-7, z: 2 ** 53 + 2 }
]

const recorded = await insertSession(app.db, owner.user.id)
await insertReadings(app.db, recorded, awkward)

// Readings that share timestamps, sensors and even all values, to test the order and the cursor.
const crowded = await insertSession(app.db, owner.user.id)
const crowd: ReadingFixture[] = []
for (let instant = 0; instant < 6; instant++) {
  const timestamp = `2024-03-01T12:00:00.${String(instant * 150_001).padStart(6, '0')}Z`
  for (const sensor of SENSORS) {
    const copies = (instant + SENSORS.indexOf(sensor)) % 4
    for (let k = 0; k < copies; k++) crowd.push({ timestamp, sensor, x: k % 2, y: 0.5, z: 0 - k })
    if (copies === 3) crowd.push({ timestamp, sensor, x: 1, y: 0.5, z: -1 })
  }
}
await insertReadings(app.db, crowded, crowd.toReversed())

function sortedOutput (readings: ReadingFixture[]): SensorReadingOutput[] {
  return readings
    .map(r => ({ timestamp: r.timestamp, sensor: r.sensor, xAxis: r.x, yAxis: r.y, zAxis: r.z }))
    .sort((a, b) => a.timestamp.localeCompare(b.timestamp) || SENSORS.indexOf(a.sensor) - SENSORS.indexOf(b.sensor) ||
      a.xAxis - b.xAxis || a.yAxis - b.yAxis || a.zAxis - b.zAxis)
}

const get = (url: string, token = owner.token) => app.inject({ url, headers: bearer(token) })

describe('GET /sessions/:id/readings.csv', () => {
  it('gives back every value exactly as sent, timestamps in UTC with microseconds', async () => {
    const response = await get(`/sessions/${recorded}/readings.csv`)
    expect(response.statusCode).toBe(200)
    expect(response.headers['content-type']).toBe('text/csv; charset=utf-8')
    expect(response.headers['content-disposition']).toBe(`attachment; filename="session-${recorded}.csv"`)
    const [header, ...lines] = response.body.trimEnd().split('\n')
    expect(header).toBe(CSV_HEADER)
    expect(lines).toHaveLength(awkward.length)
    const expected = awkward.toSorted((a, b) => a.expected.localeCompare(b.expected))
    lines.forEach((line, i) => {
      const sent = expected[i] as (typeof awkward)[number]
      const [timestamp, sensor, x, y, z] = line.split(',')
      expect(timestamp).toBe(sent.expected)
      expect(sensor).toBe(sent.sensor)
      // Object.is tells -0 from 0 and compares every bit of the double.
      expect(Object.is(Number(x), sent.x), `x of line ${i + 2}: ${x} vs ${sent.x}`).toBe(true)
      expect(Object.is(Number(y), sent.y), `y of line ${i + 2}: ${y} vs ${sent.y}`).toBe(true)
      expect(Object.is(Number(z), sent.z), `z of line ${i + 2}: ${z} vs ${sent.z}`).toBe(true)
    })
  })

  it('keeps doubles exact even where the server is configured to round them', async () => {
    const { rows: [{ current_database: database }] } = await app.db.query('select current_database()')
    await app.db.query(`alter database ${database} set extra_float_digits = 0`)
    const fresh = await buildApp(testConfig(databaseUrl), { logger: false })
    try {
      const { rows: [setting] } = await fresh.db.query('show extra_float_digits')
      expect(setting.extra_float_digits).toBe('0')
      const csv = await fresh.inject({ url: `/sessions/${recorded}/readings.csv`, headers: bearer(owner.token) })
      expect(csv.body).toContain(',0.30000000000000004,')
      const json = await fresh.inject({ url: `/sessions/${recorded}/readings`, headers: bearer(owner.token) })
      expect(json.json().items[0].xAxis).toBe(0.1 + 0.2)
    } finally {
      await fresh.close()
      await app.db.query(`alter database ${database} reset extra_float_digits`)
    }
  })

  it('orders readings sharing a timestamp by sensor, then values, like the JSON pages', async () => {
    const csv = await get(`/sessions/${crowded}/readings.csv`)
    const json = await get(`/sessions/${crowded}/readings?take=10000`)
    const fromJson = json.json().items.map((r: SensorReadingOutput) => [r.timestamp, r.sensor, r.xAxis, r.yAxis, r.zAxis].join(','))
    expect(csv.body.trimEnd().split('\n').slice(1)).toEqual(fromJson)
  })

  it('streams an empty session as the header alone', async () => {
    const empty = await insertSession(app.db, owner.user.id)
    const response = await get(`/sessions/${empty}/readings.csv`)
    expect(response.statusCode).toBe(200)
    expect(response.body).toBe(CSV_HEADER + '\n')
  })

  it('answers 404 for another beta tester, 401 without a token, and serves admins', async () => {
    expect((await get(`/sessions/${recorded}/readings.csv`, stranger.token)).statusCode).toBe(404)
    expect((await app.inject({ url: `/sessions/${recorded}/readings.csv` })).statusCode).toBe(401)
    expect((await get(`/sessions/${recorded}/readings.csv`, admin.token)).body.split('\n')).toHaveLength(awkward.length + 2)
    expect((await get('/sessions/999999999/readings.csv', admin.token)).statusCode).toBe(404)
  })

  it('does not run the export for HEAD', async () => {
    const response = await app.inject({ method: 'HEAD', url: `/sessions/${recorded}/readings.csv`, headers: bearer(owner.token) })
    expect(response.statusCode).toBe(404)
  })

  it('returns pooled connections after each export', async () => {
    for (let i = 0; i < 30; i++) expect((await get(`/sessions/${recorded}/readings.csv`)).statusCode).toBe(200)
    // The client goes back after the COPY's commit, a moment after the last byte.
    await vi.waitFor(() => expect(app.db.totalCount - app.db.idleCount).toBe(0), { timeout: 5000 })
  })
})

describe('GET /sessions/:id/readings', () => {
  it('returns the readings in time order with the field names the phone sends', async () => {
    const response = await get(`/sessions/${recorded}/readings`)
    expect(response.statusCode).toBe(200)
    const body = response.json()
    expect(body).toMatchObject({ take: 1000, nextCursor: null })
    const expected = awkward.toSorted((a, b) => a.expected.localeCompare(b.expected))
    expect(body.items.map((r: SensorReadingOutput) => r.timestamp)).toEqual(expected.map(r => r.expected))
    expect(body.items[0]).toEqual({ timestamp: '2024-05-01T08:00:00.123456Z', sensor: 'Accelerometer', xAxis: 0.1 + 0.2, yAxis: 1e-300, zAxis: 5e-324 })
    // -0 keeps its sign in the JSON, as in the CSV (JSON.stringify alone would write 0).
    expect(Object.is(body.items[1].zAxis, -0)).toBe(true)
  })

  it('pages through ties with the cursor, returning every reading exactly once', async () => {
    const all = sortedOutput(crowd)
    const whole = await get(`/sessions/${crowded}/readings?take=10000`)
    expect(whole.json().items).toEqual(all)
    for (const take of [1, 2, 3, 5, 7, all.length - 1, all.length]) {
      const seen: SensorReadingOutput[] = []
      let cursor: string | null = null
      let pages = 0
      do {
        const url: string = `/sessions/${crowded}/readings?take=${take}${cursor ? `&cursor=${cursor}` : ''}`
        const page = (await get(url)).json()
        seen.push(...page.items)
        cursor = page.nextCursor
        expect(++pages).toBeLessThanOrEqual(all.length)
      } while (cursor)
      expect(seen, `take=${take}`).toEqual(all)
    }
  })

  it('pages with skip, and resumes from a skip page with its cursor', async () => {
    const all = sortedOutput(crowd)
    const seen: SensorReadingOutput[] = []
    for (let skip = 0; skip < all.length; skip += 4) {
      seen.push(...(await get(`/sessions/${crowded}/readings?take=4&skip=${skip}`)).json().items)
    }
    expect(seen).toEqual(all)
    const middle = (await get(`/sessions/${crowded}/readings?take=5&skip=6`)).json()
    const rest = (await get(`/sessions/${crowded}/readings?take=10000&cursor=${middle.nextCursor}`)).json()
    expect([...middle.items, ...rest.items]).toEqual(all.slice(6))
  })

  it('filters with after= (strictly later)', async () => {
    const all = sortedOutput(crowd)
    const after = all[0]?.timestamp as string
    const response = await get(`/sessions/${crowded}/readings?take=10000&after=${encodeURIComponent(after)}`)
    expect(response.json().items).toEqual(all.filter(r => r.timestamp > after))
    const shifted = await get(`/sessions/${crowded}/readings?take=10000&after=${encodeURIComponent('2024-03-01T13:00:00.150001+01:00')}`)
    const later = all.filter(r => r.timestamp > '2024-03-01T12:00:00.150001Z')
    expect(later.length).toBeGreaterThan(0)
    expect(later.length).toBeLessThan(all.length - 1)
    expect(shifted.json().items).toEqual(later)
  })

  it('rejects bad paging parameters with 400', async () => {
    for (const query of ['take=0', 'take=10001', 'skip=-1', 'after=yesterday', 'cursor=bm9wZQ', 'cursor=%%%', 'take=abc']) {
      const response = await get(`/sessions/${crowded}/readings?${query}`)
      expect(response.statusCode, query).toBe(400)
      expect(response.json().error).toBe('VALIDATION_FAILED')
    }
    const first = (await get(`/sessions/${crowded}/readings?take=2`)).json()
    expect((await get(`/sessions/${crowded}/readings?skip=1&cursor=${first.nextCursor}`)).statusCode).toBe(400)
  })

  it('caps take at 10000 and defaults to 1000', async () => {
    const big = await insertSession(app.db, owner.user.id)
    await generateReadings(app.db, big, 10_001)
    const first = (await get(`/sessions/${big}/readings`)).json()
    expect(first.items).toHaveLength(1000)
    expect(first.nextCursor).toEqual(expect.any(String))
    const max = (await get(`/sessions/${big}/readings?take=10000`)).json()
    expect(max.items).toHaveLength(10_000)
    const last = (await get(`/sessions/${big}/readings?take=10000&cursor=${max.nextCursor}`)).json()
    expect(last).toMatchObject({ nextCursor: null, items: [{ timestamp: '2024-01-01T00:00:10.000000Z' }] })
  })

  it('answers 404 for another beta tester and an unknown session, 401 without a token', async () => {
    expect((await get(`/sessions/${recorded}/readings`, stranger.token)).statusCode).toBe(404)
    expect((await get('/sessions/999999999/readings')).statusCode).toBe(404)
    expect((await app.inject({ url: `/sessions/${recorded}/readings` })).statusCode).toBe(401)
    expect((await get(`/sessions/${recorded}/readings`, admin.token)).json().items).toHaveLength(awkward.length)
  })
})
