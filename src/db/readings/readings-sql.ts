import { SENSORS } from '../../schemas/sensors.js'

/**
 * The SQL the JSON pages and the CSV export share, so both present a reading
 * the same way and in the same order.
 */

/** ISO-8601 in UTC with all six fractional digits: microseconds survive, whatever the session's TimeZone or DateStyle. */
export const isoTimestampSql = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`

export const TIMESTAMP_SQL = isoTimestampSql('ts')

/** Sensor code to name, from the one list the recording path also uses. */
export const SENSOR_NAME_SQL = `(array[${SENSORS.map(name => `'${name}'`).join(', ')}])[sensor + 1]`

/**
 * Time order; sensor and values only make the order total, so that paging
 * and exports are deterministic when readings share a timestamp.
 */
export const READING_ORDER_SQL = 'ts, sensor, x, y, z'

/**
 * Shortest text that parses back to the identical double (PostgreSQL 12+ with
 * extra_float_digits >= 1, the default). A server or role configured with 0
 * would round to 15 digits, so the read path pins it per transaction.
 */
export const EXACT_FLOAT_OUTPUT_SQL = 'set local extra_float_digits = 1'
