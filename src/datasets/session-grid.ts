import { parseIsoTimestampMicros } from '../schemas/timestamps.js'
import { GAP_FACTOR, intendedRates } from '../reports/build-report.js'
import type { SessionReport } from '../schemas/session-report.js'
import { SENSORS } from '../schemas/sensors.js'

/** What the grid needs to know of a session, from its completeness report. */
export interface SessionGridFacts {
  /** Per sensor code: has readings enough to interpolate (two distinct timestamps and a median interval). */
  sensors: boolean[]
  /** Per sensor code: GAP_FACTOR x the median interval, in microseconds (the report's gap rule); Infinity where unknown. */
  gapThresholdUs: number[]
  /** The session's declared rate (metadata.sampleRateHz; the lowest, when declared per sensor), else its slowest sensor's median rate. */
  defaultRateHz: number | null
  /** The first and last reading of any sensor (microseconds since the epoch); null without readings. */
  firstUs: number | null
  lastUs: number | null
}

const micros = (iso: string | null) => iso === null ? null : parseIsoTimestampMicros(iso) ?? null

const roundRate = (hz: number) => Math.round(hz * 1000) / 1000

export function gridFacts (report: SessionReport, metadata: Record<string, unknown>): SessionGridFacts {
  const sensors: boolean[] = []
  const gapThresholdUs: number[] = []
  const medianRates: number[] = []
  let firstUs: number | null = null
  let lastUs: number | null = null
  for (const name of SENSORS) {
    const sensor = report.sensors[name]
    const median = sensor?.medianIntervalMs ?? null
    const usable = sensor !== undefined && sensor.readings >= 2 && median !== null && median > 0
    sensors.push(usable)
    gapThresholdUs.push(usable ? GAP_FACTOR * (median as number) * 1000 : Number.POSITIVE_INFINITY)
    if (usable) medianRates.push(1000 / (median as number))
    const first = micros(sensor?.firstTimestamp ?? null)
    const last = micros(sensor?.lastTimestamp ?? null)
    if (first !== null && (firstUs === null || first < firstUs)) firstUs = first
    if (last !== null && (lastUs === null || last > lastUs)) lastUs = last
  }
  const rates = intendedRates(metadata)
  const declared = SENSORS.filter((name, code) => sensors[code] && rates.get(name) != null).map(name => rates.get(name) as number)
  const defaultRate = declared.length > 0 ? Math.min(...declared) : medianRates.length > 0 ? Math.min(...medianRates) : null
  return { sensors, gapThresholdUs, defaultRateHz: defaultRate === null ? null : roundRate(defaultRate), firstUs, lastUs }
}
