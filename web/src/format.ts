/** Seconds since the epoch, with the microseconds an ISO-8601 text holds (Date keeps only milliseconds). */
export function epochSeconds (iso: string): number {
  const micros = /\.(\d+)/.exec(iso)?.[1]?.padEnd(6, '0').slice(3, 6) ?? '000'
  return Date.parse(iso) / 1000 + Number(micros) / 1e6
}

/** ISO-8601 in UTC with microseconds from seconds since the epoch. */
export function isoOfSeconds (seconds: number): string {
  const micros = Math.round(seconds * 1e6)
  const fraction = ((micros % 1e6) + 1e6) % 1e6
  return `${new Date((micros - fraction) / 1000).toISOString().slice(0, 19)}.${String(fraction).padStart(6, '0')}Z`
}

export const dateTime = (iso: string | null) => iso ? new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' }) : '—'

export function duration (seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '—'
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`
}

export const count = (value: number | null | undefined) => value === null || value === undefined ? '—' : value.toLocaleString('en-US')

export const number = (value: number | null | undefined, digits = 1) => value === null || value === undefined ? '—' : value.toFixed(digits)
