import type { WideBatch } from './grid.js'
import { CHANNELS, CHANNEL_COUNT } from './readings-chunk.js'
import type { WindowBatch } from './windows.js'

/**
 * CSV text of the wide and windows layouts, exact like the long one: each
 * double in the shortest form that parses back to it (JavaScript's String,
 * the same digits PostgreSQL writes with extra_float_digits = 1), times in
 * ISO-8601 UTC with six fractional digits, a missing value as an empty field.
 */

export const WIDE_CSV_COLUMNS = ['timestamp', ...CHANNELS, 'label', 'session_id', 'segment']

export const windowsColumns = (samples: number) => [
  'window', 'session_id', 'segment', 'start', 'end', 'label', 'purity',
  ...CHANNELS.flatMap(channel => Array.from({ length: samples }, (_, i) => `${channel}_${i}`))
]

/** String(), except that -0 keeps its sign (as the long CSV does) and NaN, a missing value, is empty. */
export function doubleText (value: number): string {
  if (value === 0) return Object.is(value, -0) ? '-0' : '0'
  return Number.isNaN(value) ? '' : String(value)
}

/**
 * ISO-8601 UTC with microseconds, e.g. 2024-05-01T08:00:00.020000Z, with
 * the date and time of the last whole second kept: grid instants come in
 * order, so consecutive rows mostly share it.
 */
export class TimestampFormatter {
  private second = Number.NaN
  private prefix = ''

  format (micros: number): string {
    const second = Math.floor(micros / 1e6)
    if (second !== this.second) {
      this.second = second
      this.prefix = new Date(second * 1000).toISOString().slice(0, 19)
    }
    return `${this.prefix}.${String(micros - second * 1e6).padStart(6, '0')}Z`
  }
}

export function encodeWideCsv (batch: WideBatch, sessionId: number, timestamps: TimestampFormatter): string {
  let text = ''
  const { labels } = batch
  for (let i = 0; i < batch.length; i++) {
    let line = timestamps.format(batch.ts[i] as number)
    for (let c = 0; c < CHANNEL_COUNT; c++) line += ',' + doubleText((batch.values[c] as Float64Array)[i] as number)
    const label = batch.label[i] as number
    text += `${line},${label === -1 ? '' : labels[label]},${sessionId},${batch.segment[i]}\n`
  }
  return text
}

export function encodeWindowsCsv (batch: WindowBatch, sessionId: number, samples: number, timestamps: TimestampFormatter): string {
  let text = ''
  const { labels } = batch
  for (let w = 0; w < batch.length; w++) {
    const label = batch.label[w] as number
    let line = `${batch.index[w]},${sessionId},${batch.segment[w]},${timestamps.format(batch.startUs[w] as number)},` +
      `${timestamps.format(batch.endUs[w] as number)},${label === -1 ? '' : labels[label]},${doubleText(batch.purity[w] as number)}`
    const base = w * samples
    for (let c = 0; c < CHANNEL_COUNT; c++) {
      const column = batch.values[c] as Float64Array
      for (let i = 0; i < samples; i++) line += ',' + doubleText(column[base + i] as number)
    }
    text += line + '\n'
  }
  return text
}
