/** The service's answers, as far as the page reads them (the OpenAPI document at /docs has all of it). */

export type SensorName = 'Accelerometer' | 'Gyroscope' | 'Magnetometer'
export const SENSORS: SensorName[] = ['Accelerometer', 'Gyroscope', 'Magnetometer']

export interface ReportSummary {
  complete: boolean
  problems: string[]
  warnings: string[]
  lostBatches: number
  gaps: number
  duplicateTimestamps: number
  missingSensors: string[]
  clockOffsetMs: number | null
}

export interface Session {
  id: number
  userId: number
  createdAt: string
  expiresAt: string
  destroyedAt: string | null
  destroyReason: string | null
  totalSensorReadingsWritten: number
  totalSensorReadingsSent: number | null
  integrity: 'ok' | 'mismatch' | 'unreported' | null
  metadata: Record<string, unknown>
  flaggedIncorrect: boolean
  flagReason: string | null
  flaggedAt: string | null
  report: ReportSummary | null
  labels?: string[]
}

export interface SessionPage {
  items: Session[]
  total: number
  nextCursor?: string | null
}

export interface SensorReport {
  expected: boolean
  readings: number
  firstTimestamp: string | null
  lastTimestamp: string | null
  durationSeconds: number | null
  achievedHz: number | null
  intendedHz: number | null
  medianIntervalMs: number | null
  jitterMs: number | null
  duplicateTimestamps: number
  gaps: { count: number, longestMs: number | null, missingMs: number }
}

export interface SessionReport {
  summary: ReportSummary
  integrity: { verdict: string, sent: number | null, written: number }
  batches: { written: number, highestBatchId: number | null, lost: number, lostRanges: Array<[number, number]>, lostRangesTruncated: boolean, conflictingResends: number }
  sensors: Partial<Record<SensorName, SensorReport>>
  clock: { batches: number, offsetMs: { median: number, p25: number, p75: number, min: number, max: number, spread: number } | null, driftPpm: number | null, receivedSpanSeconds: number | null }
}

/** [index, readings, xMin, xMax, yMin, yMax, zMin, zMax] */
export type SummaryBucket = [number, number, number, number, number, number, number, number]

export interface ReadingsSummary {
  sessionFirst: string | null
  sessionLast: string | null
  from: string | null
  to: string | null
  bucketMicros: number
  buckets: number
  sensors: Array<{ sensor: SensorName, readings: number, medianIntervalMs: number | null, buckets: SummaryBucket[] }>
  gaps: Array<{ sensor: SensorName, from: string, to: string, ms: number }>
  gapsTruncated: boolean
}

export interface Label {
  id: number
  startTime: string
  endTime: string | null
  label: string
  note: string | null
}

export interface SessionLabels {
  active: boolean
  readings: { first: string, last: string } | null
  labelRange: { from: string, to: string } | null
  defaultLabel: string | null
  labels: Label[]
}

export interface LiveNotice {
  sessionId: number
  userId: number
  batchId: number
  counts: { batch: number, total: number }
}
