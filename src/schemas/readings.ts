import { z } from 'zod'
import { SENSORS } from './sensors.js'

/** Sensor names, the one list the recording path validates with; a sensor's code in the readings table is its index. */
export const sensor = z.enum(SENSORS)
export type Sensor = z.infer<typeof sensor>

/** A stored reading as the read path returns it: the same field names the phone sends. */
export const sensorReadingOutput = z.object({
  timestamp: z.string().describe('ISO-8601 in UTC with microseconds, e.g. 2024-05-01T08:00:00.123456Z'),
  sensor,
  xAxis: z.number(),
  yAxis: z.number(),
  zAxis: z.number()
})
export type SensorReadingOutput = z.infer<typeof sensorReadingOutput>

/**
 * Where a page of readings ended. Readings are ordered by (timestamp, sensor,
 * x, y, z); `ordinal` counts the readings with this page's last (timestamp,
 * sensor) up to and including its last reading, so a next page resumes inside
 * a group of readings that share a timestamp and sensor without skipping or
 * repeating any of them.
 */
export interface ReadingsCursor {
  timestamp: string
  sensorCode: number
  ordinal: number
}

const cursorFields = z.tuple([
  z.iso.datetime({ offset: true }),
  z.number().int().min(0).max(SENSORS.length - 1),
  z.number().int().min(1).max(Number.MAX_SAFE_INTEGER)
])

export function encodeReadingsCursor (cursor: ReadingsCursor): string {
  return Buffer.from(JSON.stringify([cursor.timestamp, cursor.sensorCode, cursor.ordinal])).toString('base64url')
}

export function decodeReadingsCursor (text: string): ReadingsCursor | undefined {
  try {
    const parsed = cursorFields.safeParse(JSON.parse(Buffer.from(text, 'base64url').toString('utf8')))
    if (!parsed.success) return undefined
    const [timestamp, sensorCode, ordinal] = parsed.data
    return { timestamp, sensorCode, ordinal }
  } catch {
    return undefined
  }
}

export const READINGS_DEFAULT_TAKE = 1000
export const READINGS_MAX_TAKE = 10_000

export const readingsQuery = z.object({
  take: z.coerce.number().int().min(1).max(READINGS_MAX_TAKE).default(READINGS_DEFAULT_TAKE),
  skip: z.coerce.number().int().min(0).max(1_000_000_000).default(0),
  after: z.iso.datetime({ offset: true }).optional()
    .describe('only readings strictly later than this instant (ISO-8601 with offset)'),
  cursor: z.string().max(200).optional()
    .transform((text, ctx) => {
      if (text === undefined) return undefined
      const cursor = decodeReadingsCursor(text)
      if (!cursor) {
        ctx.addIssue({ code: 'custom', message: 'is not a cursor this service issued (use nextCursor from the previous page)' })
        return z.NEVER
      }
      return cursor
    })
    .describe('nextCursor of the previous page')
}).refine(query => query.cursor === undefined || (query.skip === 0 && query.after === undefined), {
  message: 'cursor cannot be combined with skip or after',
  path: ['cursor']
})
export type ReadingsQuery = z.infer<typeof readingsQuery>

export const readingsPage = z.object({
  items: z.array(sensorReadingOutput),
  nextCursor: z.string().nullable().describe('pass as ?cursor= for the next page; null on the last page'),
  take: z.number().int()
})
export type ReadingsPageOutput = z.infer<typeof readingsPage>

// A reading's strings come from PostgreSQL text, which cannot hold NUL, so none can look like this marker.
const NEGATIVE_ZERO_MARKER = '\u0000-0'
const NEGATIVE_ZERO_MARKER_JSON = JSON.stringify(NEGATIVE_ZERO_MARKER)

/**
 * A readings page as JSON text. JSON.stringify writes -0 as 0, dropping the
 * sign the phone sent and the CSV keeps; `-0` is valid JSON and parses back
 * to -0, so an axis that is -0 is written as `-0`.
 */
export function stringifyReadingsPage (page: ReadingsPageOutput): string {
  return JSON.stringify(page, (_key, value: unknown) => Object.is(value, -0) ? NEGATIVE_ZERO_MARKER : value)
    .replaceAll(NEGATIVE_ZERO_MARKER_JSON, '-0')
}
