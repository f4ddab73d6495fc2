import { afterAll, describe, expect, it } from 'vitest'
import { CSV_HEADER } from '../../src/db/readings/readings-export.js'
import { epochMillisToMicros, formatMicros, parseIsoTimestampMicros } from '../../src/schemas/timestamps.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { TestPhone, wsUrl, type Reading } from '../ws-client.js'

const BATCH = 4
const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl, { SENSOR_READINGS_BATCH_SIZE: String(BATCH) })
await app.listen({ port: 0, host: '127.0.0.1' })
const tester = await createUserWithToken(app, 'BETATESTER')
const admin = await createUserWithToken(app, 'ADMIN')

// What a phone might send: ISO timestamps with offsets and microseconds, epoch milliseconds with fractions, awkward doubles.
const sent: Reading[] = [
  { timestamp: '2024-05-01T10:00:00.123456+02:00', sensor: 'Accelerometer', xAxis: 0.1 + 0.2, yAxis: 1e-300, zAxis: 5e-324 },
  { timestamp: '2024-05-01T08:00:00.123456Z', sensor: 'Gyroscope', xAxis: 1.7976931348623157e308, yAxis: -0, zAxis: -2.2250738585072014e-308 },
  { timestamp: 1714550400123.457, sensor: 'Magnetometer', xAxis: 1e21, yAxis: 123456789.12345679, zAxis: -9.806649999999999 },
  { timestamp: 1714550400124, sensor: 'Accelerometer', xAxis: Math.PI, yAxis: -Math.E, zAxis: 1 / 3 },
  { timestamp: '2024-05-01T08:00:00.125000001Z', sensor: 'Gyroscope', xAxis: 0, yAxis: 2 ** 53 + 2, zAxis: 1e-7 },
  { timestamp: '2024-04-30T22:30:00.125001-09:30', sensor: 'Magnetometer', xAxis: -1e-300, yAxis: 4.9406564584124654e-324, zAxis: 0.000001 },
  { timestamp: 1714550400125.5, sensor: 'Accelerometer', xAxis: 9.81, yAxis: -9.81, zAxis: 42 },
  { timestamp: '2024-05-01T08:00:00.126+00:00', sensor: 'Gyroscope', xAxis: 1.0000000000000002, yAxis: 0.9999999999999999, zAxis: -1.0000000000000002 }
]
const micros = (reading: Reading) => typeof reading.timestamp === 'number'
  ? epochMillisToMicros(reading.timestamp)
  : parseIsoTimestampMicros(reading.timestamp) as number

// JSON.stringify writes -0 as 0; phones on other platforms send -0.0, so put that on the wire.
const wire = (event: string, data: unknown) =>
  JSON.stringify({ event, data }, (_key, value) => Object.is(value, -0) ? 'NEGATIVE-ZERO' : value).replaceAll('"NEGATIVE-ZERO"', '-0.0')

const phone = await TestPhone.connect(wsUrl(app), bearer(tester.token))
afterAll(() => phone.close())

describe('a session recorded over /ws, read back', () => {
  let sessionId = 0

  it('is recorded', async () => {
    phone.send('create_session', { metadata: { activity: 'cycling' } })
    sessionId = (await phone.expect('session_created')).sessionId as number
    for (let batch = 0; batch * BATCH < sent.length; batch++) {
      phone.sendRaw(wire('write_sensor_readings_batch', { batch_id: batch, sensor_readings: sent.slice(batch * BATCH, (batch + 1) * BATCH) }))
      expect(await phone.expect('sensor_readings_batch_written')).toMatchObject({ batchId: batch })
    }
    phone.send('destroy_session', { totalSensorReadingsSent: sent.length })
    expect(await phone.expect('session_destroyed')).toMatchObject({ integrity: 'ok', totalSensorReadingsWritten: sent.length })
  })

  it('exports as CSV with every value as the phone sent it', async () => {
    const response = await app.inject({ url: `/sessions/${sessionId}/readings.csv`, headers: bearer(tester.token) })
    expect(response.statusCode).toBe(200)
    const [header, ...lines] = response.body.trimEnd().split('\n')
    expect(header).toBe(CSV_HEADER)
    const expected = sent.toSorted((a, b) => micros(a) - micros(b))
    expect(lines).toHaveLength(sent.length)
    lines.forEach((line, i) => {
      const reading = expected[i] as Reading
      const [timestamp, sensor, x, y, z] = line.split(',')
      expect(timestamp).toBe(formatMicros(micros(reading)))
      expect(sensor).toBe(reading.sensor)
      expect([x, y, z].map(Number).map((value, k) => Object.is(value, [reading.xAxis, reading.yAxis, reading.zAxis][k])), line).toEqual([true, true, true])
    })
    expect(lines[1]).toBe('2024-05-01T08:00:00.123456Z,Gyroscope,1.7976931348623157e+308,-0,-2.2250738585072014e-308')
    expect(lines[0]).toBe('2024-05-01T08:00:00.123456Z,Accelerometer,0.30000000000000004,1e-300,5e-324')
    expect(lines[2]).toBe('2024-05-01T08:00:00.123457Z,Magnetometer,1e+21,123456789.12345679,-9.80665')
  })

  it('pages the same readings as JSON, and shows the session to its owner and admins', async () => {
    const csv = (await app.inject({ url: `/sessions/${sessionId}/readings.csv`, headers: bearer(admin.token) })).body
    const first = (await app.inject({ url: `/sessions/${sessionId}/readings?take=5`, headers: bearer(tester.token) })).json()
    const rest = (await app.inject({ url: `/sessions/${sessionId}/readings?take=5&cursor=${first.nextCursor}`, headers: bearer(tester.token) })).json()
    expect(rest.nextCursor).toBeNull()
    const json = [...first.items, ...rest.items]
    expect(json.map(r => r.timestamp)).toEqual(csv.trimEnd().split('\n').slice(1).map(line => line.split(',')[0]))
    const session = (await app.inject({ url: `/sessions/${sessionId}`, headers: bearer(admin.token) })).json()
    expect(session).toMatchObject({ userId: tester.user.id, totalSensorReadingsWritten: sent.length, integrity: 'ok', destroyReason: 'client', metadata: { activity: 'cycling' } })
  })
})
