import { describe, expect, it } from 'vitest'
import { nanosToIsoMicros, parseSensorLoggerMessage, toReadings, type SensorLoggerMessage } from '../../src/recording/sensor-logger-format.js'

const message = (payload: unknown[], extra = ''): string =>
  `{"messageId":3,"sessionId":"a7e1","deviceId":"d1"${extra},"payload":${JSON.stringify(payload)}}`

function parsed (text: string): SensorLoggerMessage {
  const result = parseSensorLoggerMessage(text)
  if (!result.ok) throw new Error(JSON.stringify(result.issues))
  return result.message
}

describe('Sensor Logger messages', () => {
  it('keeps every digit of a nanosecond time past 2^53, as a number or a string', () => {
    const text = '{"messageId":0,"sessionId":"s","deviceId":"d","payload":[{"name":"gyroscope","time":1698501144401773999,"values":{"x":1,"y":2,"z":3}},' +
      '{"name":"magnetometer","time":"1698501144401774000","values":{"x":1,"y":2,"z":3}}]}'
    const [first, second] = parsed(text).payload
    expect(first?.time).toBe('1698501144401773999')
    expect(nanosToIsoMicros(first?.time)).toBe('2023-10-28T13:52:24.401773Z')
    expect(nanosToIsoMicros(second?.time)).toBe('2023-10-28T13:52:24.401774Z')
  })

  it('leaves a "time" inside a string value alone and tolerates fields the app adds', () => {
    const text = message([{ name: 'annotation', time: 1698501144401773000, values: { text: '"time": 12' } }], ',"userId":"study-7"')
    const result = parsed(text)
    expect(result.payload[0]?.values?.text).toBe('"time": 12')
    expect(result).toMatchObject({ userId: 'study-7' })
  })

  it('refuses a body that is not the push shape, naming the field', () => {
    const result = parseSensorLoggerMessage('{"messageId":-1,"sessionId":"s","payload":[]}')
    expect(result).toEqual({ ok: false, issues: [expect.objectContaining({ path: ['messageId'] })] })
    expect(parseSensorLoggerMessage('not json')).toMatchObject({ ok: false })
  })

  it('records totalacceleration as the Accelerometer (gravity included) and skips the gravity-free accelerometer and other sensors', () => {
    const time = 1698501144401773000
    const result = toReadings(parsed(message([
      { name: 'totalacceleration', time, values: { x: 0.1, y: 9.8, z: 0.2 } },
      { name: 'accelerometer', time, values: { x: 0.1, y: 0, z: 0.2 } },
      { name: 'Gyroscope', time, values: { x: 1, y: 2, z: 3 } },
      { name: 'location', time, values: { latitude: 1 } }
    ])), 'totalacceleration')
    expect(result.readings.map(r => [r.sensor, r.yAxis])).toEqual([['Accelerometer', 9.8], ['Gyroscope', 2]])
    expect(result.skipped).toBe(2)
  })

  it('sums accelerometer and gravity of the same instant when the phone has no totalacceleration', () => {
    const result = toReadings(parsed(message([
      { name: 'accelerometer', time: 1698501144401773000, values: { x: 0.5, y: 0.25, z: -1 } },
      { name: 'gravity', time: 1698501144401773000, values: { x: 0, y: 9.75, z: 0.5 } },
      { name: 'accelerometer', time: 1698501144411773000, values: { x: 1, y: 1, z: 1 } }
    ])), 'accelerometer+gravity')
    expect(result.readings).toEqual([{ timestamp: '2023-10-28T13:52:24.401773Z', sensor: 'Accelerometer', xAxis: 0.5, yAxis: 10, zAxis: -0.5 }])
    expect(result.skipped).toBe(1) // the accelerometer entry without gravity at its instant
  })
})
