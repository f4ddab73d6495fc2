import { describe, expect, it } from 'vitest'
import { epochMillisToMicros, formatMicros, parseIsoTimestampMicros } from '../../src/schemas/timestamps.js'
import { readingTimestamp } from '../../src/schemas/ws-events.js'

describe('reading timestamps', () => {
  it('parses ISO-8601 with offsets to the microsecond', () => {
    expect(parseIsoTimestampMicros('2025-06-01T12:00:00Z')).toBe(Date.UTC(2025, 5, 1, 12) * 1000)
    expect(parseIsoTimestampMicros('2025-06-01T12:00:00.5+02:00')).toBe((Date.UTC(2025, 5, 1, 10) + 500) * 1000)
    expect(parseIsoTimestampMicros('2025-06-01T12:00:00.123456789-0130')).toBe(Date.UTC(2025, 5, 1, 13, 30) * 1000 + 123456)
    expect(parseIsoTimestampMicros('2024-02-29 23:59:59,000001z')).toBe(Date.UTC(2024, 1, 29, 23, 59, 59) * 1000 + 1)
  })

  it('rejects strings without an offset and impossible dates', () => {
    for (const text of ['2025-06-01T12:00:00', '2025-06-01', '2025-02-29T00:00:00Z', '2025-13-01T00:00:00Z', '2025-06-01T24:00:00Z', 'yesterday', '2025-06-01T12:00:00+25:00']) {
      expect(parseIsoTimestampMicros(text), text).toBeUndefined()
    }
  })

  it('takes epoch milliseconds with fractions and formats microseconds back', () => {
    expect(epochMillisToMicros(1748779200123.457)).toBe(1748779200123457)
    expect(formatMicros(1748779200123457)).toBe('2025-06-01T12:00:00.123457Z')
  })

  it('accepts only readings from 2000 to a day ahead', () => {
    expect(readingTimestamp.safeParse(Date.now()).success).toBe(true)
    expect(readingTimestamp.safeParse('1999-12-31T23:59:59Z').success).toBe(false)
    expect(readingTimestamp.safeParse(Date.now() + 25 * 3600_000).success).toBe(false)
    expect(readingTimestamp.safeParse(Number.NaN).success).toBe(false)
    expect(readingTimestamp.safeParse('NaN').success).toBe(false)
  })
})
