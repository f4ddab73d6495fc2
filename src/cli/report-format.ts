import { MIN_DRIFT_SPAN_SECONDS } from '../reports/build-report.js'
import type { ReportSummary, SensorReport, SessionReport } from '../schemas/session-report.js'
import { SENSORS } from '../schemas/sensors.js'
import type { Session } from '../schemas/sessions.js'

/** A number with at most `digits` decimals, trailing zeros dropped. */
function num (value: number, digits = 3): string {
  return String(Number(value.toFixed(digits)))
}

/** Milliseconds: three decimals below 10 ms, where they matter, one above. */
const ms = (value: number) => `${num(value, Math.abs(value) < 10 ? 3 : 1)} ms`

const orDash = <T>(value: T | null, format: (value: T) => string) => value === null ? '-' : format(value)

/** Time of day to the millisecond from the report's ISO text (YYYY-MM-DDTHH:MM:SS.ffffffZ). */
const timeOfDay = (iso: string) => iso.slice(11, 23)

/** The report column of `sessions list`: "complete", the problems, or why there is none. */
export function reportColumn (session: Session): string {
  const summary: ReportSummary | null = session.report
  if (summary) return summary.complete ? 'complete' : summary.problems.join(',')
  return session.destroyedAt ? 'not computed' : ''
}

/** Rows of labels against one column per sensor, padded to fit; numbers right-aligned. */
function sensorTable (sensors: SessionReport['sensors'], indent: string): string[] {
  const rows: Array<[string, (s: SensorReport) => string]> = [
    ['expected', s => s.expected ? 'yes' : 'no'],
    ['readings', s => String(s.readings)],
    ['first (UTC)', s => orDash(s.firstTimestamp, timeOfDay)],
    ['last (UTC)', s => orDash(s.lastTimestamp, timeOfDay)],
    ['duration', s => orDash(s.durationSeconds, v => `${num(v, 3)} s`)],
    ['achieved Hz', s => orDash(s.achievedHz, v => num(v, 2))],
    ['intended Hz', s => orDash(s.intendedHz, v => num(v, 2))],
    ['achieved/intended', s => orDash(s.achievedToIntended, v => `${num(v * 100, 1)}%`)],
    ['median interval', s => orDash(s.medianIntervalMs, ms)],
    ['jitter (sd)', s => orDash(s.jitterMs, ms)],
    ['duplicates', s => String(s.duplicateTimestamps)],
    ['gaps', s => String(s.gaps.count)],
    ['longest gap', s => orDash(s.gaps.longestMs, ms)],
    ['missing time', s => s.gaps.count ? ms(s.gaps.missingMs) : '-']
  ]
  const names = SENSORS.filter(name => sensors[name] !== undefined)
  const cells = rows.map(([label, cell]) => [label, ...names.map(name => cell(sensors[name] as SensorReport))])
  const header = ['', ...names]
  const widths = header.map((title, i) => Math.max(title.length, ...cells.map(row => (row[i] as string).length)))
  // Labels left, values (and the sensor names over them) right.
  const line = (row: string[]) => indent + row.map((cell, i) => i === 0 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number)).join('  ').trimEnd()
  return [line(header), ...cells.map(line)]
}

/** First to last reading over all sensors, in full: the table shows times of day. */
function span (sensors: SessionReport['sensors']): string {
  const reports = Object.values(sensors)
  const firsts = reports.flatMap(s => s.firstTimestamp ?? [])
  const lasts = reports.flatMap(s => s.lastTimestamp ?? [])
  if (!firsts.length || !lasts.length) return 'no readings'
  // ISO text of one fixed format: the smallest string is the earliest time.
  return `${firsts.reduce((a, b) => a < b ? a : b)} to ${lasts.reduce((a, b) => a > b ? a : b)} (device clock)`
}

/** Items joined by ", " after a label, wrapped onto indented lines to stay within `width` columns. */
function wrapped (label: string, items: string[], width = 96): string[] {
  const indent = ' '.repeat(label.length)
  const lines: string[] = []
  let line = label
  items.forEach((item, i) => {
    const text = i < items.length - 1 ? `${item},` : item
    if (line.length > indent.length && line.length + 1 + text.length > width) {
      lines.push(line)
      line = indent + text
    } else {
      line += (line.length > indent.length ? ' ' : '') + text
    }
  })
  return [...lines, line]
}

function problemDetails (report: SessionReport): string[] {
  const { summary, batches } = report
  return summary.problems.map(problem => {
    switch (problem) {
      case 'lost_batches': return `lost_batches (${batches.lost})`
      case 'missing_sensor': return `missing_sensor (${summary.missingSensors.join(', ')})`
      case 'gaps': return `gaps (${summary.gaps})`
      default: return problem
    }
  })
}

function integrityLine (report: SessionReport): string {
  const { verdict, sent, written } = report.integrity
  if (sent === null) return `${verdict}: ${written} written, the phone reported no count sent`
  const difference = sent - written
  return `${verdict}: ${sent} sent, ${written} written${difference ? ` (${difference > 0 ? `${difference} missing` : `${-difference} more than sent`})` : ''}`
}

function batchesLines (report: SessionReport): string[] {
  const label = '  batches    '
  const { written, highestBatchId, lost, lostRanges, lostRangesTruncated } = report.batches
  if (highestBatchId === null) return [`${label}${written} written`]
  const base = `${written} written (ids 0-${highestBatchId}), ${lost} lost`
  if (!lost) return [label + base]
  const ranges = lostRanges.map(([first, last]) => first === last ? String(first) : `${first}-${last}`)
  if (lostRangesTruncated) ranges.push('... (the first 100 ranges only)')
  return wrapped(label, [`${base}: ${ranges[0] as string}`, ...ranges.slice(1)])
}

function driftText ({ batches, receivedSpanSeconds, driftPpm }: SessionReport['clock']): string {
  if (driftPpm !== null) return `drift ${num(driftPpm, 1)} ppm`
  if (batches < 3) return 'drift unknown (needs 3 batches)'
  if ((receivedSpanSeconds ?? 0) < MIN_DRIFT_SPAN_SECONDS) return `drift unknown (needs batches received across ${MIN_DRIFT_SPAN_SECONDS} s)`
  return 'drift unknown'
}

function clockLines (report: SessionReport, indent: string): string[] {
  const { batches, offsetMs, receivedSpanSeconds } = report.clock
  if (offsetMs === null) return ['unknown: no batch recorded its receive time and device time span']
  const across = receivedSpanSeconds === null ? '' : ` received across ${num(receivedSpanSeconds, 1)} s`
  return [
    `device minus server time, ${batches} batches${across}: median ${ms(offsetMs.median)}`,
    `${indent}p25-p75 ${ms(offsetMs.p25)} to ${ms(offsetMs.p75)} (spread ${ms(offsetMs.spread)}), min ${ms(offsetMs.min)}, max ${ms(offsetMs.max)}`,
    `${indent}${driftText(report.clock)}`
  ]
}

/** The completeness report for people, in under 100 columns. */
export function describeReport (report: SessionReport): string {
  const pad = ' '.repeat(13)
  const [clockFirst, ...clockRest] = clockLines(report, pad)
  return [
    `Completeness report (computed ${report.computedAt}, version ${report.version})`,
    `  verdict    ${report.summary.complete ? 'complete' : 'incomplete'}`,
    ...report.summary.complete ? [] : wrapped('  problems   ', problemDetails(report)),
    ...wrapped('  warnings   ', report.summary.warnings.length ? report.summary.warnings : ['none']),
    `  integrity  ${integrityLine(report)}`,
    ...batchesLines(report),
    `  clock      ${clockFirst}`,
    ...clockRest,
    `  sensors    ${span(report.sensors)}`,
    ...sensorTable(report.sensors, '    ')
  ].join('\n')
}
