import { encode } from 'cbor-x'
import WebSocket from 'ws'
import { afterEach, describe, expect, it } from 'vitest'
import { BINARY_BATCH_SUBPROTOCOL } from '../../src/schemas/binary-batch.js'
import { SENSORS } from '../../src/schemas/sensors.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { makeReadings, wsUrl, type Frame, type Reading } from '../ws-client.js'

const BATCH = 375
const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl)
await app.listen({ port: 0, host: '127.0.0.1' })

/** A phone's socket that may offer subprotocols; queues the server's (JSON) answers. */
class Phone {
  private readonly frames: Frame[] = []
  private wake: (() => void) | undefined

  private constructor (readonly socket: WebSocket) {
    socket.on('message', data => {
      this.frames.push(JSON.parse(data.toString()))
      this.wake?.()
    })
  }

  static async connect (protocols: string[] = []): Promise<Phone> {
    const { token } = await createUserWithToken(app)
    const socket = new WebSocket(wsUrl(app), protocols, { headers: bearer(token) })
    await new Promise((resolve, reject) => {
      socket.once('open', resolve)
      socket.once('error', reject)
    })
    const phone = new Phone(socket)
    open.push(phone)
    return phone
  }

  send (event: string, data: unknown): void {
    this.socket.send(JSON.stringify({ event, data }))
  }

  sendBinary (bytes: Uint8Array): void {
    this.socket.send(bytes, { binary: true })
  }

  async next (): Promise<Frame> {
    const deadline = Date.now() + 10_000
    while (this.frames.length === 0) {
      if (Date.now() > deadline) throw new Error('no frame within 10 s')
      await new Promise<void>(resolve => {
        this.wake = resolve
        setTimeout(resolve, 100)
      })
    }
    return this.frames.shift() as Frame
  }

  async createSession (): Promise<number> {
    this.send('create_session', {})
    const frame = await this.next()
    expect(frame.event).toBe('session_created')
    return frame.data.sessionId as number
  }
}

const open: Phone[] = []
afterEach(() => {
  for (const phone of open.splice(0)) phone.socket.terminate()
})

/** The readings of a JSON batch as a binary frame: integer microseconds from a base, sensor codes, float64 columns. */
function binaryBatch (batchId: number, readings: Reading[]): Buffer {
  const micros = readings.map(reading => Math.round(Number(reading.timestamp) * 1000))
  const base = micros[0] as number
  return encode({
    event: 'write_sensor_readings_batch',
    data: {
      batch_id: batchId,
      sensor_readings: {
        timestampBase: base,
        timestamp: Int32Array.from(micros, value => value - base),
        sensor: Uint8Array.from(readings, reading => SENSORS.indexOf(reading.sensor as typeof SENSORS[number])),
        xAxis: Float64Array.from(readings, reading => reading.xAxis),
        yAxis: Float64Array.from(readings, reading => reading.yAxis),
        zAxis: Float64Array.from(readings, reading => reading.zAxis)
      }
    }
  })
}

async function storedReadings (sessionId: number) {
  const { rows } = await app.db.query<{ micros: string, sensor: number, x: number, y: number, z: number }>(
    `select (extract(epoch from ts) * 1000000)::bigint::text as micros, sensor, x, y, z
     from readings where session_id = $1 order by ts, sensor`, [sessionId])
  return rows.map(row => ({ micros: Number(row.micros), sensor: row.sensor, x: row.x, y: row.y, z: row.z }))
}

const asStored = (readings: Reading[]) => readings
  .map(reading => ({ micros: Math.round(Number(reading.timestamp) * 1000), sensor: SENSORS.indexOf(reading.sensor as typeof SENSORS[number]), x: reading.xAxis, y: reading.yAxis, z: reading.zAxis }))
  .sort((a, b) => a.micros - b.micros || a.sensor - b.sensor)

describe('binary batch frames', () => {
  it('are refused as before, and nothing new is answered, on a socket that did not ask for them', async () => {
    const phone = await Phone.connect()
    expect(phone.socket.protocol).toBe('')
    await phone.createSession()
    phone.sendBinary(binaryBatch(0, makeReadings(BATCH)))
    expect(await phone.next()).toEqual({ event: 'error', data: { code: 'binary_frames_not_supported', message: 'Frames must be JSON text' } })
    // A subprotocol the server does not know is answered as ws always answered it: the first one offered.
    const other = await Phone.connect(['chat.example', 'other.example'])
    expect(other.socket.protocol).toBe('chat.example')
    other.sendBinary(binaryBatch(0, makeReadings(BATCH)))
    expect((await other.next()).data).toMatchObject({ code: 'binary_frames_not_supported' })
  })

  it('are acknowledged in frame order among JSON batches, and store exactly the same readings', async () => {
    const phone = await Phone.connect(['chat.example', BINARY_BATCH_SUBPROTOCOL])
    expect(phone.socket.protocol).toBe(BINARY_BATCH_SUBPROTOCOL)
    const sessionId = await phone.createSession()
    const start = Date.now() - 60_000
    const batches = Array.from({ length: 6 }, (_, batchId) => makeReadings(BATCH, start + batchId * 1250, batchId + 1))
    // Values whose JSON text and float64 must agree to the last bit, and a sub-millisecond timestamp.
    batches[1]![0] = { timestamp: start + 1250.123, sensor: 'Gyroscope', xAxis: 0.1 + 0.2, yAxis: 5e-324, zAxis: -1.7976931348623157e308 }
    batches.forEach((readings, batchId) => {
      if (batchId % 3 === 2) phone.send('write_sensor_readings_batch', { batch_id: batchId, sensor_readings: readings })
      else phone.sendBinary(binaryBatch(batchId, readings))
    })
    for (let batchId = 0; batchId < batches.length; batchId++) {
      expect(await phone.next()).toEqual({ event: 'sensor_readings_batch_written', data: { sessionId, batchId, totalSensorReadingsWritten: (batchId + 1) * BATCH } })
    }
    expect(await storedReadings(sessionId)).toEqual(asStored(batches.flat()))
  })

  it('answer bad readings, a wrong size and a bad frame as the JSON path does, and the socket stays open', async () => {
    const phone = await Phone.connect([BINARY_BATCH_SUBPROTOCOL])
    const sessionId = await phone.createSession()
    const readings = makeReadings(BATCH)
    readings[200] = { ...readings[200]!, xAxis: Infinity }
    phone.sendBinary(binaryBatch(0, readings))
    const binaryAnswer = await phone.next()
    // The same readings as JSON text: 1e999 is what a JSON number too large for a double parses to.
    phone.socket.send(JSON.stringify({ event: 'write_sensor_readings_batch', data: { batch_id: 0, sensor_readings: readings } }).replace('null', '1e999'))
    expect(await phone.next()).toEqual(binaryAnswer)
    expect(binaryAnswer).toEqual({
      event: 'invalid_sensor_reading_schema',
      data: { sessionId, batchId: 0, issues: [{ path: ['sensor_readings', 200, 'xAxis'], message: 'Invalid input: expected number, received Infinity' }] }
    })

    phone.sendBinary(binaryBatch(0, makeReadings(10)))
    expect(await phone.next()).toEqual({ event: 'invalid_sensor_readings_batch_size', data: { sessionId, batchId: 0, expected: BATCH, received: 10 } })

    phone.sendBinary(Buffer.from('{"event": "write_sensor_readings_batch"}'))
    expect(await phone.next()).toMatchObject({ event: 'error', data: { code: 'invalid_frame' } })
    phone.sendBinary(encode({ event: 'write_sensor_readings_batch', data: { batch_id: 3, sensor_readings: { timestampBase: 0 } } }))
    const refused = await phone.next()
    expect(refused).toMatchObject({ event: 'invalid_sensor_reading_schema', data: { sessionId, batchId: 3 } })
    expect((refused.data.issues as Array<{ path: unknown[] }>).map(issue => issue.path)).toEqual(
      ['timestamp', 'sensor', 'xAxis', 'yAxis', 'zAxis'].map(column => ['sensor_readings', column]))

    phone.sendBinary(binaryBatch(0, makeReadings(BATCH)))
    expect(await phone.next()).toEqual({ event: 'sensor_readings_batch_written', data: { sessionId, batchId: 0, totalSensorReadingsWritten: BATCH } })
  })

  it('share the ledger with JSON batches: the same readings resent either way are acknowledged once, other readings are a conflict', async () => {
    const phone = await Phone.connect([BINARY_BATCH_SUBPROTOCOL])
    const sessionId = await phone.createSession()
    const readings = makeReadings(BATCH, Date.now() - 30_000, 7)
    phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: readings })
    phone.sendBinary(binaryBatch(0, readings))
    phone.sendBinary(binaryBatch(1, readings.map(reading => ({ ...reading, timestamp: Number(reading.timestamp) + 1250 }))))
    phone.send('write_sensor_readings_batch', { batch_id: 1, sensor_readings: readings.map(reading => ({ ...reading, timestamp: new Date(Number(reading.timestamp) + 1250).toISOString() })) })
    phone.sendBinary(binaryBatch(1, makeReadings(BATCH, Date.now() - 20_000, 8)))
    const written = (totalSensorReadingsWritten: number, batchId: number) => ({ event: 'sensor_readings_batch_written', data: { sessionId, batchId, totalSensorReadingsWritten } })
    expect(await phone.next()).toEqual(written(BATCH, 0))
    expect(await phone.next()).toEqual(written(BATCH, 0))
    expect(await phone.next()).toEqual(written(2 * BATCH, 1))
    expect(await phone.next()).toEqual(written(2 * BATCH, 1))
    expect(await phone.next()).toMatchObject({ event: 'batch_conflict', data: { sessionId, batchId: 1 } })
    expect(await storedReadings(sessionId)).toHaveLength(2 * BATCH)
  })
})
