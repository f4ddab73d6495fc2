import { z } from 'zod'
import { MAX_BATCH_ID, validationIssues, type ValidationIssue } from '../schemas/ws-events.js'
import type { SensorName } from '../schemas/sensors.js'

/**
 * Sensor Logger's push message (HTTP push and MQTT publish share it):
 * `{messageId, sessionId, deviceId, payload: [{name, time, values, accuracy?}]}`.
 * `time` is UTC epoch nanoseconds, a number past 2^53; fields the app adds
 * (e.g. `userId` during a study) are ignored.
 */
export const sensorLoggerMessage = z.object({
  messageId: z.number().int().min(0).max(MAX_BATCH_ID),
  sessionId: z.string().min(1).max(200),
  deviceId: z.string().max(200).optional(),
  payload: z.array(z.object({
    name: z.string().max(100),
    // A string of digits: parseSensorLoggerMessage quotes the number before JSON.parse sees it.
    time: z.union([z.string(), z.number()]).optional(),
    values: z.record(z.string(), z.unknown()).optional()
  }).loose())
}).loose()
export type SensorLoggerMessage = z.infer<typeof sensorLoggerMessage>

/** Where a session's Accelerometer readings come from: ours include gravity, Sensor Logger's `accelerometer` does not. */
export type AccelerationSource = 'totalacceleration' | 'accelerometer+gravity'

export type ParsedMessage =
  | { ok: true, message: SensorLoggerMessage }
  | { ok: false, issues: ValidationIssue[] }

/**
 * `"time": 1698501144401773000` → `"time": "1698501144401773000"`: a double
 * holds only 15-17 digits, and nanoseconds since the epoch have 19. The
 * lookbehind leaves `\"time\"` inside a string value alone.
 */
const BARE_TIME = /(?<!\\)("time"\s*:\s*)(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g

/** Parses a push body (HTTP body or MQTT payload) without losing the digits of `time`. */
export function parseSensorLoggerMessage (text: string): ParsedMessage {
  let json: unknown
  try {
    json = JSON.parse(text.replace(BARE_TIME, '$1"$2"'))
  } catch {
    return { ok: false, issues: [{ path: [], message: 'the body is not valid JSON' }] }
  }
  const parsed = sensorLoggerMessage.safeParse(json)
  if (!parsed.success) {
    return {
      ok: false,
      issues: validationIssues(parsed.error)
    }
  }
  return { ok: true, message: parsed.data }
}

/** The app's "test push" carries an entry named `test` and nothing to record. */
export const isTestPush = (message: SensorLoggerMessage): boolean =>
  message.payload.some(entry => entry.name.toLowerCase() === 'test')

/**
 * Epoch nanoseconds (digits, or a safe integer number) as an ISO-8601 text
 * with microseconds, which the batch validator parses exactly. The
 * nanoseconds below a microsecond are dropped (PostgreSQL keeps
 * microseconds). Anything else comes back as given, for the validator to
 * refuse with its path.
 */
export function nanosToIsoMicros (time: unknown): unknown {
  const digits = typeof time === 'string' ? time : typeof time === 'number' && Number.isSafeInteger(time) ? String(time) : undefined
  if (digits === undefined || !/^\d{13,20}$/.test(digits)) return time
  const micros = BigInt(digits) / 1000n
  const millis = micros / 1000n
  const iso = new Date(Number(millis)).toISOString()
  return `${iso.slice(0, -1)}${String(micros % 1000n).padStart(3, '0')}Z`
}

const DIRECT: Record<string, SensorName> = { gyroscope: 'Gyroscope', magnetometer: 'Magnetometer' }

export interface MappedReadings {
  /** Readings in this service's shape, unvalidated (the batch validator checks them). */
  readings: Array<Record<string, unknown>>
  /** Payload entries not recorded: other sensors, and the acceleration stream this session does not use. */
  skipped: number
}

/** The acceleration stream to record for a session whose first message is this one. */
export function chooseAccelerationSource (message: SensorLoggerMessage): AccelerationSource {
  return message.payload.some(entry => entry.name.toLowerCase() === 'totalacceleration') ? 'totalacceleration' : 'accelerometer+gravity'
}

const axis = (values: Record<string, unknown> | undefined, key: string): unknown => values?.[key]

/**
 * Maps a message's payload onto Accelerometer (gravity included, from the
 * session's one acceleration source), Gyroscope and Magnetometer readings.
 * With `accelerometer+gravity`, an accelerometer entry is summed with the
 * gravity entry of the same instant; one without its pair is skipped.
 */
export function toReadings (message: SensorLoggerMessage, source: AccelerationSource): MappedReadings {
  const readings: Array<Record<string, unknown>> = []
  let skipped = 0
  const gravityAt = new Map<unknown, Record<string, unknown> | undefined>()
  const accelerometerTimes = new Set<unknown>()
  if (source === 'accelerometer+gravity') {
    for (const entry of message.payload) {
      const name = entry.name.toLowerCase()
      if (name === 'gravity') gravityAt.set(entry.time, entry.values)
      else if (name === 'accelerometer') accelerometerTimes.add(entry.time)
    }
  }
  for (const entry of message.payload) {
    const name = entry.name.toLowerCase()
    const timestamp = nanosToIsoMicros(entry.time)
    const direct = DIRECT[name]
    if (direct) {
      readings.push({ timestamp, sensor: direct, xAxis: axis(entry.values, 'x'), yAxis: axis(entry.values, 'y'), zAxis: axis(entry.values, 'z') })
    } else if (name === 'totalacceleration' && source === 'totalacceleration') {
      readings.push({ timestamp, sensor: 'Accelerometer', xAxis: axis(entry.values, 'x'), yAxis: axis(entry.values, 'y'), zAxis: axis(entry.values, 'z') })
    } else if (name === 'accelerometer' && source === 'accelerometer+gravity' && gravityAt.has(entry.time)) {
      const gravity = gravityAt.get(entry.time)
      readings.push({
        timestamp,
        sensor: 'Accelerometer',
        xAxis: sum(axis(entry.values, 'x'), axis(gravity, 'x')),
        yAxis: sum(axis(entry.values, 'y'), axis(gravity, 'y')),
        zAxis: sum(axis(entry.values, 'z'), axis(gravity, 'z'))
      })
    } else if (name === 'gravity' && source === 'accelerometer+gravity' && accelerometerTimes.has(entry.time)) {
      // Summed into the accelerometer reading of its instant.
    } else {
      skipped++
    }
  }
  return { readings, skipped }
}

/** A sum only of two numbers; anything else stays as given, so the validator names the bad axis. */
const sum = (a: unknown, b: unknown): unknown => typeof a === 'number' && typeof b === 'number' ? a + b : a
