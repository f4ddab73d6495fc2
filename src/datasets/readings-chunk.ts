import { SENSORS } from '../schemas/sensors.js'

/** A run of a session's readings in time order, columnar (defined beside the COPY that streams it). */
export type { ReadingsChunk } from '../db/readings/dataset-readings.js'

export const SENSOR_COUNT = SENSORS.length

/** Column name prefix of each sensor in the wide and windows layouts, by sensor code. */
export const SENSOR_PREFIXES = ['acc', 'gyro', 'mag'] as const

/** The wide layout's nine value columns: sensor code x 3 + axis. */
export const CHANNELS = SENSOR_PREFIXES.flatMap(prefix => ['x', 'y', 'z'].map(axis => `${prefix}_${axis}`))
export const CHANNEL_COUNT = CHANNELS.length
