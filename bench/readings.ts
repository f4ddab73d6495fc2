/**
 * Synthetic but realistic motion data: 3 sensors sampled at 100 Hz, smooth
 * periodic signals around plausible resting values (gravity on the
 * accelerometer, the Earth's field on the magnetometer) with a little noise.
 * The same source produces JSON frames for the phones and numeric rows for
 * the baselines, so both write the same readings.
 */
import { encode as encodeCbor } from 'cbor-x'

export const SENSORS = ['Accelerometer', 'Gyroscope', 'Magnetometer'] as const
export type SensorName = typeof SENSORS[number]

export const SAMPLE_INTERVAL_MS = 10
export const SAMPLES_PER_BATCH = 125
export const READINGS_PER_BATCH = SAMPLES_PER_BATCH * SENSORS.length
/** Wall time one batch covers: 125 samples at 100 Hz. */
export const BATCH_INTERVAL_MS = SAMPLES_PER_BATCH * SAMPLE_INTERVAL_MS

export type TimestampFormat = 'epoch' | 'iso'
/** How phones send batches: JSON text, or binary CBOR frames (docs/protocol.md, "Binary batches"). */
export type FrameFormat = 'json' | 'binary'
/** The subprotocol a phone offers to send binary batches. */
export const BINARY_BATCH_SUBPROTOCOL = 'motion-ingest.cbor.v1'

/** One reading as it travels on the wire. */
export interface WireReading {
  timestamp: number | string
  sensor: SensorName
  xAxis: number
  yAxis: number
  zAxis: number
}

// Signals repeat every PERIOD samples (5 s); each phone starts at its own phase.
const PERIOD = 500
const BASE: Record<SensorName, [number, number, number]> = {
  Accelerometer: [0.1, 9.81, 0.3],
  Gyroscope: [0, 0, 0],
  Magnetometer: [21.5, -33.2, 40.7]
}
const AMPLITUDE: Record<SensorName, number> = { Accelerometer: 2.5, Gyroscope: 0.8, Magnetometer: 3 }

/** Deterministic noise so runs are reproducible. */
function mulberry32 (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface SignalTable {
  /** values[sensor][sample * 3 + axis] */
  values: Float64Array[]
  /** `"xAxis":..,"yAxis":..,"zAxis":..` per sensor and sample, preformatted. */
  axes: string[][]
}

function buildTable (): SignalTable {
  const random = mulberry32(42)
  const values: Float64Array[] = []
  const axes: string[][] = []
  for (const sensor of SENSORS) {
    const base = BASE[sensor]
    const amplitude = AMPLITUDE[sensor]
    const table = new Float64Array(PERIOD * 3)
    const text: string[] = []
    for (let i = 0; i < PERIOD; i++) {
      const angle = (2 * Math.PI * i) / PERIOD
      for (let axis = 0; axis < 3; axis++) {
        // A slow swing (the stride) plus a faster wobble (pedalling, steps) plus noise.
        const signal = amplitude * (Math.sin(angle + axis) + 0.3 * Math.sin(4 * angle + 2 * axis))
        table[i * 3 + axis] = base[axis]! + signal + (random() - 0.5) * amplitude * 0.02
      }
      text.push(`"xAxis":${table[i * 3]},"yAxis":${table[i * 3 + 1]},"zAxis":${table[i * 3 + 2]}`)
    }
    values.push(table)
    axes.push(text)
  }
  return { values, axes }
}

let sharedTable: SignalTable | undefined
const table = () => (sharedTable ??= buildTable())

const PREFIX = SENSORS.map(sensor => `,"sensor":"${sensor}",`)

/**
 * The readings of one phone's recording. Batch b holds samples
 * [b * 125, (b + 1) * 125) of each sensor, interleaved sample by sample,
 * sample i taken at startMs + i * 10 ms.
 */
export class ReadingSource {
  readonly startMs: number
  private readonly phase: number

  constructor (options: { startMs: number, seed: number }) {
    this.startMs = Math.round(options.startMs)
    this.phase = ((options.seed % PERIOD) + PERIOD) % PERIOD
  }

  /** Epoch milliseconds of sample i. */
  sampleTime (sample: number): number {
    return this.startMs + sample * SAMPLE_INTERVAL_MS
  }

  /** The batch as objects (tests and debugging). */
  readings (batch: number, format: TimestampFormat = 'epoch'): WireReading[] {
    const out: WireReading[] = []
    this.forEachRow(batch, (ms, sensor, x, y, z) => {
      out.push({ timestamp: format === 'iso' ? new Date(ms).toISOString() : ms, sensor: SENSORS[sensor]!, xAxis: x, yAxis: y, zAxis: z })
    })
    return out
  }

  /**
   * The whole `write_sensor_readings_batch` frame as JSON text, built by
   * concatenating preformatted pieces: JSON.stringify would make the
   * generator, not the server, the bottleneck of a flood run.
   */
  frame (batch: number, format: TimestampFormat = 'epoch'): string {
    const { axes } = table()
    let json = `{"event":"write_sensor_readings_batch","data":{"batch_id":${batch},"sensor_readings":[`
    const first = batch * SAMPLES_PER_BATCH
    for (let s = 0; s < SAMPLES_PER_BATCH; s++) {
      const sample = first + s
      const ms = this.sampleTime(sample)
      const ts = format === 'iso' ? `"${new Date(ms).toISOString()}"` : String(ms)
      const row = (sample + this.phase) % PERIOD
      for (let sensor = 0; sensor < SENSORS.length; sensor++) {
        json += `${s === 0 && sensor === 0 ? '' : ','}{"timestamp":${ts}${PREFIX[sensor]}${axes[sensor]![row]}}`
      }
    }
    return json + ']}}'
  }

  /**
   * The same batch as a binary frame: one CBOR map whose readings are RFC
   * 8746 typed arrays (microseconds after a base, sensor codes, float64
   * axes), as a phone's CBOR library writes it.
   */
  binaryFrame (batch: number): Buffer {
    const timestamp = new Int32Array(READINGS_PER_BATCH)
    const sensor = new Uint8Array(READINGS_PER_BATCH)
    const xAxis = new Float64Array(READINGS_PER_BATCH)
    const yAxis = new Float64Array(READINGS_PER_BATCH)
    const zAxis = new Float64Array(READINGS_PER_BATCH)
    const base = this.sampleTime(batch * SAMPLES_PER_BATCH) * 1000
    let i = 0
    this.forEachRow(batch, (ms, code, x, y, z) => {
      timestamp[i] = ms * 1000 - base
      sensor[i] = code
      xAxis[i] = x
      yAxis[i] = y
      zAxis[i++] = z
    })
    return encodeCbor({ event: 'write_sensor_readings_batch', data: { batch_id: batch, sensor_readings: { timestampBase: base, timestamp, sensor, xAxis, yAxis, zAxis } } })
  }

  /** Calls fn for every reading of the batch, in frame order, with numeric values. */
  forEachRow (batch: number, fn: (ms: number, sensor: number, x: number, y: number, z: number) => void): void {
    const { values } = table()
    const first = batch * SAMPLES_PER_BATCH
    for (let s = 0; s < SAMPLES_PER_BATCH; s++) {
      const sample = first + s
      const ms = this.sampleTime(sample)
      const row = ((sample + this.phase) % PERIOD) * 3
      for (let sensor = 0; sensor < SENSORS.length; sensor++) {
        const v = values[sensor]!
        fn(ms, sensor, v[row]!, v[row + 1]!, v[row + 2]!)
      }
    }
  }
}
