/**
 * Reading timestamps are kept at microsecond precision (PostgreSQL's
 * timestamptz resolution) as an integer count of microseconds since the Unix
 * epoch. 2^53 microseconds is year 2255, so a JS number holds them exactly.
 */

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
const isLeapYear = (year: number) => (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0

/** The number written by `length` ASCII digits at `start`, or -1 if any is not a digit. */
function digits (text: string, start: number, length: number): number {
  let value = 0
  for (let i = start; i < start + length; i++) {
    const d = text.charCodeAt(i) - 48
    if (d < 0 || d > 9) return -1
    value = value * 10 + d
  }
  return value
}

/**
 * Microseconds since the epoch of an ISO-8601 date-time with an offset
 * (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|+HHMM)`), or undefined when the
 * text is not one or names an impossible date. Hand-parsed: it runs for every
 * reading, and a regular expression with Date arithmetic costs several times more.
 */
export function parseIsoTimestampMicros (text: string): number | undefined {
  if (text.length < 20 || text.length > 40) return undefined
  const year = digits(text, 0, 4)
  const month = digits(text, 5, 2)
  const day = digits(text, 8, 2)
  const hour = digits(text, 11, 2)
  const minute = digits(text, 14, 2)
  const second = digits(text, 17, 2)
  const t = text.charCodeAt(10)
  if (text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45 || (t !== 84 && t !== 116 && t !== 32) ||
    text.charCodeAt(13) !== 58 || text.charCodeAt(16) !== 58) return undefined
  if (year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) return undefined
  if (day > (month === 2 && isLeapYear(year) ? 29 : DAYS_IN_MONTH[month - 1] as number)) return undefined

  let i = 19
  let micros = 0
  const separator = text.charCodeAt(i)
  if (separator === 46 || separator === 44) { // '.' or ','
    let scale = 100_000
    const first = ++i
    for (; i < text.length; i++) {
      const d = text.charCodeAt(i) - 48
      if (d < 0 || d > 9) break
      micros += d * scale
      scale /= 10
    }
    if (i === first || i - first > 9) return undefined
    micros = Math.floor(micros)
  }

  let offsetMinutes = 0
  const zone = text.charCodeAt(i)
  if (zone === 90 || zone === 122) { // 'Z' or 'z'
    if (i + 1 !== text.length) return undefined
  } else if (zone === 43 || zone === 45) { // '+' or '-'
    const rest = text.length - i - 1
    const offsetHours = digits(text, i + 1, 2)
    let offsetMins
    if (rest === 5 && text.charCodeAt(i + 3) === 58) offsetMins = digits(text, i + 4, 2)
    else if (rest === 4) offsetMins = digits(text, i + 3, 2)
    else return undefined
    if (offsetHours < 0 || offsetHours > 23 || offsetMins < 0 || offsetMins > 59) return undefined
    offsetMinutes = (zone === 45 ? -1 : 1) * (offsetHours * 60 + offsetMins)
  } else {
    return undefined
  }
  const ms = Date.UTC(year, month - 1, day, hour, minute, second)
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
