import { z } from 'zod'
import { SENSORS } from './sensors.js'

export const SUMMARY_DEFAULT_BUCKETS = 1000
/** More buckets than any screen has pixels across; the answer stays a few hundred kB. */
export const SUMMARY_MAX_BUCKETS = 4000

const instant = z.iso.datetime({ offset: true })

export const readingsSummaryQuery = z.object({
  buckets: z.coerce.number().int().min(1).max(SUMMARY_MAX_BUCKETS).default(SUMMARY_DEFAULT_BUCKETS)
    .describe('how many equal time buckets the range is cut into: about the plot\'s width in pixels'),
  from: instant.optional().describe('start of the range (ISO-8601 with offset); the session\'s first reading when absent'),
  to: instant.optional().describe('end of the range, exclusive (ISO-8601 with offset); just past the session\'s last reading when absent'),
  lastSeconds: z.coerce.number().positive().max(86_400).optional()
    .describe('instead of from/to: the last this many seconds up to the session\'s newest reading (a live plot)')
}).refine(query => query.lastSeconds === undefined || (query.from === undefined && query.to === undefined), {
  message: 'lastSeconds cannot be combined with from or to',
  path: ['lastSeconds']
}).refine(query => query.from === undefined || query.to === undefined || Date.parse(query.to) > Date.parse(query.from), {
  message: 'to must be later than from',
  path: ['to']
})

const sensorName = z.enum(SENSORS)

export const readingsSummary = z.object({
  sessionId: z.number().int(),
  sessionFirst: z.string().nullable().describe('the session\'s first reading (ISO-8601 UTC, microseconds), whatever the range'),
  sessionLast: z.string().nullable().describe('the session\'s last reading'),
  from: z.string().nullable().describe('start of the range summarised; bucket i starts at from + i x bucketMicros; null when nothing was asked and the session has no reading'),
  to: z.string().nullable().describe('end of the range, exclusive'),
  bucketMicros: z.number().int().describe('width of a bucket in microseconds'),
  buckets: z.number().int(),
  sensors: z.array(z.object({
    sensor: sensorName,
    readings: z.number().int().describe('readings of this sensor in the range'),
    medianIntervalMs: z.number().nullable().describe('what gaps are measured against: the completeness report\'s median interval, or estimated from the session\'s first readings before it has one'),
    buckets: z.array(z.tuple([
      z.number().int(), z.number().int(), z.number(), z.number(), z.number(), z.number(), z.number(), z.number()
    ])).describe('non-empty buckets in time order: [index, readings, xMin, xMax, yMin, yMax, zMin, zMax]')
  })),
  gaps: z.array(z.object({
    sensor: sensorName,
    from: z.string().describe('the last reading before the gap'),
    to: z.string().describe('the first reading after it'),
    ms: z.number()
  })).describe('intervals longer than 3x the sensor\'s median interval that cross a bucket boundary (every gap wider than a bucket), in time order'),
  gapsTruncated: z.boolean().describe('more gaps than the 500 listed: zoom in')
})
export type ReadingsSummaryOutput = z.infer<typeof readingsSummary>
