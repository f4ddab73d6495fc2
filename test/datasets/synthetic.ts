import type { ReadingsChunk } from '../../src/datasets/readings-chunk.js'

/**
 * A session whose truth is known: every sensor at 100 Hz, each axis a sine
 * of its own frequency and phase, readings offset by a few milliseconds from
 * the 50 Hz grid so that the grid falls between them, and optionally a gap
 * where one sensor records nothing.
 */
export interface SyntheticSession {
  /** First reading, microseconds since the epoch. */
  startUs: number
  seconds: number
  /** Per sensor code: microseconds its readings lag the start (sensors sample at slightly different instants). */
  offsetsUs: [number, number, number]
  /** A stretch where `sensor` has no readings: [fromUs, toUs). */
  gap?: { sensor: number, fromUs: number, toUs: number }
  /** Sensors it records; all three by default. */
  sensors?: number[]
}

export const PERIOD_US = 10_000
export const AMPLITUDE = 9.81

/** Axis a of sensor s: a sine of (0.5 + 0.25 x (3s + a)) Hz, phase (3s + a) / 2. */
export function truth (sensor: number, axis: number, us: number): number {
  const channel = sensor * 3 + axis
  const hz = 0.5 + 0.25 * channel
  return AMPLITUDE * Math.sin(2 * Math.PI * hz * us / 1e6 + channel / 2)
}

/**
 * The largest error linear interpolation between samples PERIOD_US apart can
 * make on a channel: h^2/8 x max|f''| = h^2/8 x A x (2 pi f)^2 (about 0.005
 * for the slowest channel, 0.03 for the fastest), plus rounding.
 */
export function interpolationTolerance (channel: number): number {
  const hz = 0.5 + 0.25 * channel
  return (PERIOD_US / 1e6) ** 2 / 8 * AMPLITUDE * (2 * Math.PI * hz) ** 2 + 1e-12
}

export interface SyntheticReading { us: number, sensor: number, x: number, y: number, z: number }

/** Every reading of the session in time order (sensors interleaved). */
export function syntheticReadings (session: SyntheticSession): SyntheticReading[] {
  const readings: SyntheticReading[] = []
  const count = Math.round(session.seconds * 1e6 / PERIOD_US)
  const sensors = session.sensors ?? [0, 1, 2]
  for (let i = 0; i < count; i++) {
    for (const sensor of sensors) {
      const us = session.startUs + i * PERIOD_US + session.offsetsUs[sensor]!
      const { gap } = session
      if (gap && gap.sensor === sensor && us >= gap.fromUs && us < gap.toUs) continue
      readings.push({ us, sensor, x: truth(sensor, 0, us), y: truth(sensor, 1, us), z: truth(sensor, 2, us) })
    }
  }
  return readings.sort((a, b) => a.us - b.us || a.sensor - b.sensor)
}

/** The readings as columnar chunks of `size`, as the database streams them. */
export function toChunks (readings: SyntheticReading[], size: number): ReadingsChunk[] {
  const chunks: ReadingsChunk[] = []
  for (let start = 0; start < readings.length; start += size) {
    const part = readings.slice(start, start + size)
    chunks.push({
      length: part.length,
      ts: Float64Array.from(part, r => r.us),
      sensor: Uint8Array.from(part, r => r.sensor),
      x: Float64Array.from(part, r => r.x),
      y: Float64Array.from(part, r => r.y),
      z: Float64Array.from(part, r => r.z)
    })
  }
  return chunks
}
