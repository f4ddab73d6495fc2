import { SENSORS } from '../schemas/sensors.js'

/**
 * A run of a session's readings in time order, one typed array per column,
 * as the database streams them: what every dataset layout is computed from,
 * without an object per reading.
 */
export interface ReadingsChunk {
  length: number
  /** Microseconds since the epoch (exact in a double until the year 2255). */
  ts: Float64Array
  /** The sensor's code: its index in SENSORS. */
  sensor: Uint8Array
  x: Float64Array
  y: Float64Array
  z: Float64Array
}

export const SENSOR_COUNT = SENSORS.length

/** Column name prefix of each sensor in the wide and windows layouts, by sensor code. */
export const SENSOR_PREFIXES = ['acc', 'gyro', 'mag'] as const

/** The wide layout's nine value columns: sensor code x 3 + axis. */
export const CHANNELS = SENSOR_PREFIXES.flatMap(prefix => ['x', 'y', 'z'].map(axis => `${prefix}_${axis}`))
export const CHANNEL_COUNT = CHANNELS.length
