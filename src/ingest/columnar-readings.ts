import { SENSORS } from '../schemas/sensors.js'

/**
 * A batch's readings as columns, as a binary frame carries them: reading i
 * was taken at `timestampBase + timestamp[i]` microseconds since the Unix
 * epoch, by sensor `sensor[i]` (its index in SENSORS), with the three axes.
 * The columns are views of the received frame, never one object per reading.
 */
export interface ColumnarReadings {
  /** Microseconds since 1970-01-01 UTC, a safe integer. */
  timestampBase: number
  /** Microseconds after timestampBase, one per reading. */
  timestamp: Int32Array
  sensor: Uint8Array
  xAxis: Float64Array
  yAxis: Float64Array
  zAxis: Float64Array
}

/** A batch's readings as a transport delivers them: JSON values, unvalidated, or decoded columns of equal length. */
export type BatchReadings = unknown[] | ColumnarReadings

export const isColumnar = (readings: BatchReadings): readings is ColumnarReadings => !Array.isArray(readings)

export function readingCount (readings: BatchReadings): number {
  return isColumnar(readings) ? readings.timestamp.length : readings.length
}

/**
 * The readings a JSON frame would carry for the same values (epoch
 * milliseconds, sensor names): what the schema judges when a columnar batch is
 * refused, so both encodings get the same issues, paths and messages. Built
 * only for refused batches.
 */
export function readingsAsJson (columns: ColumnarReadings): unknown[] {
  const readings = new Array<unknown>(columns.timestamp.length)
  for (let i = 0; i < readings.length; i++) {
    const code = columns.sensor[i] as number
    readings[i] = {
      timestamp: (columns.timestampBase + (columns.timestamp[i] as number)) / 1000,
      // An unknown code stays a number, which the schema refuses as it refuses an unknown name.
      sensor: SENSORS[code] ?? code,
      xAxis: columns.xAxis[i],
      yAxis: columns.yAxis[i],
      zAxis: columns.zAxis[i]
    }
  }
  return readings
}
