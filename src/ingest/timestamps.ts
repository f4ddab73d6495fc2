/**
 * Reading timestamps are kept at microsecond precision (PostgreSQL's
 * timestamptz resolution) as an integer count of microseconds since the Unix
 * epoch. 2^53 microseconds is year 2255, so a JS number holds them exactly.
 */

const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(?:([Zz])|([+-])(\d{2}):?(\d{2}))$/

/** Microseconds since the epoch of an ISO-8601 string with an offset, or undefined when it is not one. */
export function parseIsoTimestampMicros (text: string): number | undefined {
  const m = ISO_8601.exec(text)
  if (!m) return undefined
  const [, y, mo, d, h, mi, s, fraction, zulu, sign, oh, om] = m
  const year = Number(y)
  const month = Number(mo)
  const day = Number(d)
  const hour = Number(h)
  const minute = Number(mi)
  const second = Number(s)
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined
  const ms = Date.UTC(year, month - 1, day, hour, minute, second)
  // Date.UTC rolls 31 February over into March; a real date survives the round trip.
  if (new Date(ms).getUTCDate() !== day) return undefined
  let offsetMinutes = 0
  if (!zulu) {
    const offsetHours = Number(oh)
    const offsetMins = Number(om)
    if (offsetHours > 23 || offsetMins > 59) return undefined
    offsetMinutes = (sign === '-' ? -1 : 1) * (offsetHours * 60 + offsetMins)
  }
  const micros = fraction ? Number(fraction.padEnd(6, '0').slice(0, 6)) : 0
  return (ms - offsetMinutes * 60_000) * 1000 + micros
}

/** Microseconds since the epoch of epoch milliseconds (fractions allowed), rounded to the microsecond. */
export function epochMillisToMicros (ms: number): number {
  return Math.round(ms * 1000)
}

/** The ISO-8601 UTC form with microseconds, e.g. 2026-11-24T20:42:19.123456Z. */
export function formatMicros (micros: number): string {
  const ms = Math.floor(micros / 1000)
  const iso = new Date(ms).toISOString()
  const sub = String(micros - ms * 1000).padStart(3, '0')
  return `${iso.slice(0, 23)}${sub}Z`
}
