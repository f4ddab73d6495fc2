import type { ReadingsCursor, SensorReadingOutput } from '../../schemas/readings.js'
import { withTransaction, type ClientSource } from '../pool.js'
import { EXACT_FLOAT_OUTPUT_SQL, SENSOR_NAME_SQL, TIMESTAMP_SQL } from './readings-sql.js'

export interface ReadingsPageOptions {
  take: number
  skip: number
  /** Only readings strictly later than this instant (ISO-8601). */
  after?: string
  /** Resume after the reading this cursor points at. */
  cursor?: ReadingsCursor
}

export interface ReadingsPage {
  items: SensorReadingOutput[]
  /** Where this page ended, or null when no reading follows. */
  next: ReadingsCursor | null
}

interface ReadingRow {
  timestamp: string
  sensor_code: number
  sensor: SensorReadingOutput['sensor']
  x: number
  y: number
  z: number
  ordinal: number
}

/**
 * The instant cut to whole microseconds, rounding down. PostgreSQL keeps
 * microseconds and rounds a finer input to the nearest one, so
 * `ts > '…21.7529996Z'` would become `ts > '…21.753000Z'` and skip a reading
 * at .753000, which is later than .7529996. Rounding down instead keeps
 * "strictly later" exact at the microsecond precision readings are stored
 * (and cursors written) with. Cutting the local fraction is a floor of the
 * instant too: UTC offsets are whole minutes.
 */
export function floorToMicroseconds (iso: string): string {
  return iso.replace(/(\.\d{6})\d+/, '$1')
}

/**
 * One page of a session's readings in time order. Every row carries its
 * ordinal among the readings sharing its (timestamp, sensor); a cursor is
 * (timestamp, sensor, ordinal), so the next page starts exactly after the
 * last reading returned even inside such a group. Reads one row past the
 * page to know whether another page exists.
 */
export async function findReadingsPage (pool: ClientSource, sessionId: number, options: ReadingsPageOptions): Promise<ReadingsPage> {
  const values: unknown[] = [sessionId]
  const where = ['session_id = $1']
  let resume = ''
  if (options.after !== undefined) {
    values.push(floorToMicroseconds(options.after))
    where.push(`ts > $${values.length}::timestamptz`)
  }
  if (options.cursor) {
    const { timestamp, sensorCode, ordinal } = options.cursor
    values.push(timestamp, sensorCode, ordinal)
    const [ts, sensor, n] = [values.length - 2, values.length - 1, values.length]
    // The group at the cursor is read whole (ts >=) so its ordinals are the same as on the previous page.
    where.push(`ts >= $${ts}::timestamptz`)
    resume = `where (ts, sensor, ordinal) > ($${ts}::timestamptz, $${sensor}::smallint, $${n}::bigint)`
  }
  values.push(options.skip, options.take + 1)
  const sql = `
    select ${TIMESTAMP_SQL} as timestamp, sensor as sensor_code, ${SENSOR_NAME_SQL} as sensor, x, y, z, ordinal::int as ordinal
    from (
      select ts, sensor, x, y, z, row_number() over (partition by ts, sensor order by x, y, z) as ordinal
      from readings
      where ${where.join(' and ')}
    ) numbered
    ${resume}
    order by numbered.ts, numbered.sensor, numbered.ordinal
    offset $${values.length - 1} limit $${values.length}`
  const rows = await withTransaction(pool, async client => {
    await client.query(EXACT_FLOAT_OUTPUT_SQL)
    return (await client.query<ReadingRow>(sql, values)).rows
  })
  const more = rows.length > options.take
  const page = more ? rows.slice(0, options.take) : rows
  const last = page.at(-1)
  return {
    items: page.map(row => ({ timestamp: row.timestamp, sensor: row.sensor, xAxis: row.x, yAxis: row.y, zAxis: row.z })),
    next: more && last ? { timestamp: last.timestamp, sensorCode: last.sensor_code, ordinal: last.ordinal } : null
  }
}
