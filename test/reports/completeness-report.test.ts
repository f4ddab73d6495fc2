import { afterEach, describe, expect, it } from 'vitest'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { TestPhone, wsUrl, type Reading } from '../ws-client.js'

/**
 * Sessions recorded over a real socket with defects built in on purpose;
 * each report must say exactly what was built in, and nothing else.
 */

const BATCH = 30
const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl, { SENSOR_READINGS_BATCH_SIZE: String(BATCH), SESSION_REAPER_INTERVAL_MS: '100' })
await app.listen({ port: 0, host: '127.0.0.1' })

const phones: TestPhone[] = []
afterEach(async () => {
  await Promise.all(phones.splice(0).map(phone => phone.close()))
})

type SensorName = 'Accelerometer' | 'Gyroscope' | 'Magnetometer'
const ALL: SensorName[] = ['Accelerometer', 'Gyroscope', 'Magnetometer']

interface StreamSpec {
  /** Device time of the first sample, epoch ms. */
  startMs: number
  periodMs: number
  samples: number
  sensors?: SensorName[]
  /** Samples (by index) a sensor does not deliver. */
  skip?: (sensor: SensorName, index: number) => boolean
  /** Extra readings repeating the timestamp of these sample indexes (per sensor). */
  repeat?: (sensor: SensorName, index: number) => boolean
}

/** A phone's stream: every period, one reading per sensor; cut to whole batches. */
function stream (spec: StreamSpec): Reading[] {
  const readings: Reading[] = []
  for (let i = 0; i < spec.samples; i++) {
    for (const sensor of spec.sensors ?? ALL) {
      if (spec.skip?.(sensor, i)) continue
      const reading = { timestamp: spec.startMs + i * spec.periodMs, sensor, xAxis: Math.sin(i), yAxis: Math.cos(i), zAxis: i / 7 }
      readings.push(reading)
      if (spec.repeat?.(sensor, i)) readings.push({ ...reading, xAxis: reading.xAxis + 1 })
    }
  }
  return readings.slice(0, readings.length - readings.length % BATCH)
}

/** Device times ending now, so that a true clock shows an offset of about the upload delay. */
const endingNow = (samples: number, periodMs: number) => Date.now() - samples * periodMs

interface Recording {
  /** A function is called once the session exists, so device times ending "now" end when sending starts. */
  readings: Reading[] | (() => Reading[])
  metadata?: Record<string, unknown>
  /** Batch ids not sent (lost on the way). */
  lose?: number[]
  /** What the phone says it sent; the count of every reading (lost ones included) when absent. */
  totalSent?: number
}

async function record ({ readings: given, metadata = {}, lose = [], totalSent }: Recording) {
  const tester = await createUserWithToken(app, 'BETATESTER')
  const phone = await TestPhone.connect(wsUrl(app), bearer(tester.token))
  phones.push(phone)
  phone.send('create_session', { metadata })
  const { sessionId } = await phone.expect('session_created') as { sessionId: number }
  const readings = typeof given === 'function' ? given() : given
  let sent = 0
  for (let batchId = 0; batchId * BATCH < readings.length; batchId++) {
    if (lose.includes(batchId)) continue
    phone.send('write_sensor_readings_batch', { batch_id: batchId, sensor_readings: readings.slice(batchId * BATCH, (batchId + 1) * BATCH) })
    sent++
  }
  for (let i = 0; i < sent; i++) await phone.expect('sensor_readings_batch_written')
  phone.send('destroy_session', { totalSensorReadingsSent: totalSent ?? readings.length })
  const destroyed = await phone.expect('session_destroyed')
  const response = await app.inject({ method: 'GET', url: `/sessions/${sessionId}/report`, headers: bearer(tester.token) })
  expect(response.statusCode).toBe(200)
  return { sessionId, destroyed, report: response.json(), tester, readings }
}

const count = (readings: Reading[], sensor: SensorName) => readings.filter(r => r.sensor === sensor).length
const iso = (ms: number) => new Date(ms).toISOString().replace('Z', '000Z')

describe('the completeness report', () => {
  it('finds nothing wrong with a clean session, and says so in session_destroyed', async () => {
    const samples = 100
    let startMs = 0
    const { sessionId, destroyed, report, readings } = await record({
      readings: () => {
        startMs = endingNow(samples, 10)
        return stream({ startMs, periodMs: 10, samples })
      },
      metadata: { sampleRateHz: 100 }
    })

    const summary = { complete: true, problems: [], warnings: [], lostBatches: 0, gaps: 0, duplicateTimestamps: 0, missingSensors: [] }
    expect(destroyed.report).toMatchObject(summary)
    expect(report.summary).toMatchObject(summary)
    expect(report).toMatchObject({
      sessionId,
      integrity: { verdict: 'ok', sent: readings.length, written: readings.length },
      batches: { written: readings.length / BATCH, highestBatchId: readings.length / BATCH - 1, lost: 0, lostRanges: [], lostRangesTruncated: false }
    })
    for (const sensor of ALL) {
      const n = count(readings, sensor)
      expect(report.sensors[sensor]).toEqual({
        expected: true,
        readings: n,
        firstTimestamp: iso(startMs),
        lastTimestamp: iso(startMs + (n - 1) * 10),
        durationSeconds: (n - 1) / 100,
        achievedHz: 100,
        intendedHz: 100,
        achievedToIntended: 1,
        medianIntervalMs: 10,
        jitterMs: 0,
        duplicateTimestamps: 0,
        gaps: { count: 0, longestMs: null, missingMs: 0, leadingMs: 0, trailingMs: 0 }
      })
    }
    // Device clock true: the offset is the upload delay, a little below zero.
    expect(report.clock.batches).toBe(readings.length / BATCH)
    expect(report.clock.offsetMs.median).toBeLessThanOrEqual(1)
    expect(report.clock.offsetMs.median).toBeGreaterThan(-2000)
    // Readings per bucket add up to the session, for every sensor.
    for (const sensor of ALL) {
      expect((report.timeline.readings[sensor] as number[]).reduce((a, b) => a + b, 0)).toBe(count(readings, sensor))
    }
    expect(report.timeline.start).toBe(iso(startMs))

    // The summary travels with the session and the report is stored, not recomputed.
    const session = await app.inject({ method: 'GET', url: `/sessions/${sessionId}`, headers: bearer((await createUserWithToken(app, 'ADMIN')).token) })
    expect(session.json().report).toEqual(report.summary)
    const again = await app.inject({ method: 'GET', url: `/sessions/${sessionId}/report`, headers: bearer((await createUserWithToken(app, 'ADMIN')).token) })
    expect(again.json().computedAt).toBe(report.computedAt)
  })

  it('counts gaps longer than 3x the median interval, the longest, and the time they miss', async () => {
    const samples = 300
    // Gyroscope drops 50 samples (500 ms) after sample 100, and 10 samples (100 ms) after sample 200;
    // Magnetometer drops 2 samples (30 ms between readings: not more than 3x 10 ms, so not a gap).
    const { destroyed, report } = await record({
      readings: () => stream({
        startMs: endingNow(samples, 10),
        periodMs: 10,
        samples,
        skip: (sensor, i) => (sensor === 'Gyroscope' && ((i > 100 && i <= 150) || (i > 200 && i <= 210))) ||
        (sensor === 'Magnetometer' && i > 50 && i <= 52)
      })
    })
    expect(report.sensors.Gyroscope.gaps).toMatchObject({ count: 2, longestMs: 510, missingMs: 600 })
    expect(report.sensors.Gyroscope.medianIntervalMs).toBe(10)
    expect(report.sensors.Magnetometer.gaps).toMatchObject({ count: 0, longestMs: null, missingMs: 0 })
    expect(report.sensors.Accelerometer.gaps.count).toBe(0)
    expect(report.summary).toMatchObject({ complete: false, problems: ['gaps'], gaps: 2, lostBatches: 0, missingSensors: [] })
    expect(destroyed.report).toEqual(report.summary)
  })

  it('judges the rate again when the intended rate is corrected afterwards', async () => {
    const samples = 100
    const { sessionId, report, tester } = await record({ readings: () => stream({ startMs: endingNow(samples, 10), periodMs: 10, samples }), metadata: { sampleRateHz: 200 } })
    expect(report.summary.problems).toEqual(['rate_below_intended'])
    const patched = await app.inject({ method: 'PATCH', url: `/sessions/${sessionId}`, headers: bearer(tester.token), payload: { metadata: { sampleRateHz: 100 } } })
    expect(patched.statusCode).toBe(200)
    expect(patched.json().report).toMatchObject({ complete: true, problems: [] })
    const again = await app.inject({ method: 'GET', url: `/sessions/${sessionId}/report`, headers: bearer(tester.token) })
    expect(again.json().sensors.Accelerometer).toMatchObject({ intendedHz: 100, achievedToIntended: 1 })
  })

  it('counts a sensor that stops early or starts late as a gap against the other sensors', async () => {
    const samples = 300
    // 300 samples of two sensors and 150 of the third: 750 readings, 25 whole batches.
    const early = await record({ readings: () => stream({ startMs: endingNow(samples, 10), periodMs: 10, samples, skip: (sensor, i) => sensor === 'Gyroscope' && i >= 150 }) })
    expect(early.report.sensors.Gyroscope.gaps).toEqual({ count: 1, longestMs: 1500, missingMs: 1500, leadingMs: 0, trailingMs: 1500 })
    expect(early.report.sensors.Gyroscope.achievedHz).toBe(100)
    expect(early.report.summary).toMatchObject({ complete: false, problems: ['gaps'], gaps: 1 })
    const late = await record({ readings: () => stream({ startMs: endingNow(samples, 10), periodMs: 10, samples, skip: (sensor, i) => sensor === 'Magnetometer' && i < 150 }) })
    expect(late.report.sensors.Magnetometer.gaps).toEqual({ count: 1, longestMs: 1500, missingMs: 1500, leadingMs: 1500, trailingMs: 0 })
  })

  it('gives a sensor with a single reading no rate, interval or jitter, and a gap to the end', async () => {
    const samples = 119
    // 119 samples of two sensors and one of the third: 239 readings, cut to 230 (the last 9 readings go).
    const { report } = await record({ readings: () => stream({ startMs: endingNow(samples, 10), periodMs: 10, samples, skip: (sensor, i) => sensor === 'Magnetometer' && i > 0 }) })
    expect(report.sensors.Magnetometer).toMatchObject({ readings: 1, achievedHz: null, medianIntervalMs: null, jitterMs: null, duplicateTimestamps: 0 })
    expect(report.sensors.Magnetometer.gaps).toMatchObject({ count: 1, leadingMs: 0 })
    expect(report.sensors.Magnetometer.gaps.trailingMs).toBeGreaterThan(1000)
    expect(report.summary.problems).toEqual(['gaps'])
  })

  it('reports a missing sensor, unless the metadata says the session records without it', async () => {
    const samples = 100
    const readings = stream({ startMs: endingNow(samples, 10), periodMs: 10, samples, sensors: ['Accelerometer', 'Gyroscope'] })
    const missing = await record({ readings })
    expect(missing.report.summary).toMatchObject({ complete: false, problems: ['missing_sensor'], missingSensors: ['Magnetometer'] })
    expect(missing.report.sensors.Magnetometer).toMatchObject({ expected: true, readings: 0, firstTimestamp: null, achievedHz: null })

    const declared = await record({ readings, metadata: { sampleRateHz: { Accelerometer: 100, Gyroscope: 100 } } })
    expect(declared.report.summary).toMatchObject({ complete: true, problems: [], missingSensors: [] })
    expect(declared.report.sensors.Magnetometer).toMatchObject({ expected: false, readings: 0 })
    expect(declared.report.sensors.Gyroscope).toMatchObject({ intendedHz: 100, achievedToIntended: 1 })
  })

  it('counts readings with duplicate timestamps, without counting them as gaps or rate', async () => {
    const samples = 150
    // The accelerometer repeats 8 of its timestamps, the gyroscope one.
    const { report, readings } = await record({
      readings: () => stream({
        startMs: endingNow(samples, 10),
        periodMs: 10,
        samples,
        repeat: (sensor, i) => (sensor === 'Accelerometer' && i % 20 === 5) || (sensor === 'Gyroscope' && i === 40)
      }),
      metadata: { sampleRateHz: 100 }
    })
    // 150 samples x 3 sensors + 9 repeats = 459 readings, cut to 450: the last three samples (9 readings) go.
    expect(readings).toHaveLength(450)
    expect(count(readings, 'Accelerometer')).toBe(147 + 8)
    expect(report.sensors.Accelerometer.duplicateTimestamps).toBe(8) // samples 5, 25, ..., 145
    expect(report.sensors.Gyroscope.duplicateTimestamps).toBe(1)
    expect(report.sensors.Magnetometer.duplicateTimestamps).toBe(0)
    expect(report.sensors.Accelerometer).toMatchObject({ achievedHz: 100, medianIntervalMs: 10, jitterMs: 0, gaps: { count: 0 } })
    expect(report.summary).toMatchObject({
      complete: true,
      problems: [],
      warnings: ['duplicate_timestamps'],
      duplicateTimestamps: 9
    })
  })

  it('measures a skewed device clock as its offset from the server clock', async () => {
    const samples = 120
    const skewMs = 90_000
    const { report } = await record({ readings: () => stream({ startMs: endingNow(samples, 10) + skewMs, periodMs: 10, samples }) })
    const offset = report.clock.offsetMs
    // The device is 90 s ahead. The 1.2 s of readings go out at once, so a batch's last reading is
    // up to 1.2 s older than its receipt, plus the upload delay of a local socket.
    expect(offset.median).toBeGreaterThan(skewMs - 3000)
    expect(offset.median).toBeLessThanOrEqual(skewMs + 1)
    expect(offset.min).toBeLessThanOrEqual(offset.p25)
    expect(offset.p25).toBeLessThanOrEqual(offset.median)
    expect(offset.median).toBeLessThanOrEqual(offset.p75)
    expect(offset.p75).toBeLessThanOrEqual(offset.max)
    expect(offset.spread).toBeCloseTo(offset.p75 - offset.p25, 2)
    expect(report.summary).toMatchObject({ complete: true, warnings: ['clock_offset'] })
    expect(report.summary.clockOffsetMs).toBe(offset.median)
  })

  it('lists lost batches as holes in the batch id sequence, and the count mismatch they cause', async () => {
    const samples = 200
    const { destroyed, report, readings } = await record({ readings: () => stream({ startMs: endingNow(samples, 10), periodMs: 10, samples }), lose: [0, 3, 5, 6] })
    const batches = readings.length / BATCH
    expect(report.batches).toEqual({ written: batches - 4, highestBatchId: batches - 1, firstBatchId: 0, lost: 4, lostRanges: [[0, 0], [3, 3], [5, 6]], lostRangesTruncated: false, conflictingResends: 0 })
    expect(report.integrity).toEqual({ verdict: 'mismatch', sent: readings.length, written: readings.length - 4 * BATCH })
    expect(report.summary).toMatchObject({ complete: false, lostBatches: 4 })
    // Lost batches leave holes in the readings too: whole batches are 10 samples of all three sensors.
    expect(report.summary.problems).toEqual(['integrity_mismatch', 'lost_batches', 'gaps'])
    expect(destroyed).toMatchObject({ integrity: 'mismatch', report: report.summary })
  })

  it('compares the achieved rate with the intended one', async () => {
    const samples = 120
    const { report } = await record({ readings: () => stream({ startMs: endingNow(samples, 20), periodMs: 20, samples }), metadata: { sampleRateHz: 100 } })
    expect(report.sensors.Accelerometer).toMatchObject({ achievedHz: 50, intendedHz: 100, achievedToIntended: 0.5, medianIntervalMs: 20 })
    expect(report.summary).toMatchObject({ complete: false, problems: ['rate_below_intended'] })
  })
})
