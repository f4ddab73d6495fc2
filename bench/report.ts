import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { BenchResult, ServicePhaseResult } from './bench.js'
import { formatDatasetExport } from './dataset-export.js'
import { formatStepSearch } from './step-search.js'

const int = (value: number) => Math.round(value).toLocaleString('en')
const fixed = (value: number, digits = 1) => value.toFixed(digits)
const pct = (value: number | undefined) => value === undefined ? '' : `${(value * 100).toFixed(0)}%`
const times = (value: number | undefined) => value === undefined ? '' : `${value.toFixed(2)}x`

export function markdownTable (header: string[], rows: string[][]): string {
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map(row => (row[i] ?? '').length)))
  const line = (cells: string[]) => `| ${cells.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`
  return [line(header), `|${widths.map(w => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n')
}

function servicePhaseRow (phase: ServicePhaseResult, result: BenchResult): string[] {
  const limit = result.limit?.readingsPerSecond
  const naive = result.naive?.readingsPerSecond
  const latency = phase.ackLatencyMs
  const frames = result.options.frames === 'binary' ? 'binary CBOR frames' : `JSON frames, ${result.options.timestampFormat} timestamps`
  const label = (phase.mode === 'realtime'
    ? `service, real time: ${int(phase.phones)} phones x ${phase.seconds} s, offered ${int(phase.offeredReadingsPerSecond ?? 0)}/s${phase.keptUp ? ' (kept up)' : ' (FELL BEHIND)'}`
    : `service, flood: ${int(phase.phones)} phones x ${phase.seconds} s`) + `, ${frames}`
  return [
    label,
    int(phase.readingsAcked),
    int(phase.readingsPerSecond),
    limit ? pct(phase.readingsPerSecond / limit) : '',
    naive ? times(phase.readingsPerSecond / naive) : '',
    `${fixed(latency.p50)} / ${fixed(latency.p95)} / ${fixed(latency.p99)} / ${fixed(latency.max)}`,
    `${int(phase.serverPeakRssMb)} MB`,
    `${fixed(phase.cpu.server, 2)} / ${fixed(phase.cpu.postgres, 2)} / ${fixed(phase.cpu.generator, 2)}`,
    String(phase.errors + phase.failedToStart + phase.serverLogErrors),
    phase.verification.ok ? 'yes' : 'NO'
  ]
}

function baselineRow (label: string, baseline: NonNullable<BenchResult['limit']>, result: BenchResult): string[] {
  const limit = result.limit?.readingsPerSecond
  const naive = result.naive?.readingsPerSecond
  return [
    label,
    int(baseline.rows),
    int(baseline.readingsPerSecond),
    limit ? pct(baseline.readingsPerSecond / limit) : '',
    naive ? times(baseline.readingsPerSecond / naive) : '',
    '', '', `- / ${fixed(baseline.cpu.postgres, 2)} / -`, '0', ''
  ]
}

function pushRow (push: NonNullable<BenchResult['push']>, result: BenchResult): string[] {
  const limit = result.limit?.readingsPerSecond
  const naive = result.naive?.readingsPerSecond
  const latency = push.ackLatencyMs
  return [
    `service, HTTP push (Sensor Logger): ${int(push.phones)} phones x ${push.seconds} s, offered ${int(push.offeredReadingsPerSecond)}/s, JSON ns times`,
    int(push.readingsAcked),
    int(push.readingsPerSecond),
    limit ? pct(push.readingsPerSecond / limit) : '',
    naive ? times(push.readingsPerSecond / naive) : '',
    `${fixed(latency.p50)} / ${fixed(latency.p95)} / ${fixed(latency.p99)} / ${fixed(latency.max)}`,
    '', '',
    String(push.errors + push.serverLogErrors),
    push.verification.ok ? 'yes' : 'NO'
  ]
}

/** The results as Markdown: the main table, the export and report lines, targets, and any problems. */
export function formatReport (result: BenchResult): string {
  const rows: string[][] = []
  if (result.realtime) rows.push(servicePhaseRow(result.realtime, result))
  if (result.flood) rows.push(servicePhaseRow(result.flood, result))
  if (result.push) rows.push(pushRow(result.push, result))
  if (result.limit) rows.push(baselineRow('limit: binary COPY, one pg client', result.limit, result))
  if (result.limitBySession) rows.push(baselineRow('limit, rows grouped by session: binary COPY, one pg client', result.limitBySession, result))
  if (result.naive) rows.push(baselineRow('naive: 375-row INSERTs, one pg client', result.naive, result))
  const out: string[] = []
  const { storage } = result.database
  out.push(`Machine: ${result.machine.cpus} CPUs (${result.machine.cpuModel}), ${result.machine.memoryGb} GB, Node ${result.machine.node}; ` +
    `PostgreSQL ${storage.postgresVersion}, readings in a ${storage.readingsHypertable ? `TimescaleDB ${storage.timescaledbVersion} hypertable` : 'plain table'} ` +
    `(${result.database.source}). Service (${result.options.serverCode === 'compiled' ? 'compiled, node dist/server.js' : 'from source, tsx'}), PostgreSQL and generators share the machine ` +
    `(${fixed(result.machine.busyCoresBeforeStart, 2)} cores busy with other work just before the start). ` +
    `Database settings: ${Object.entries(result.database.settings).map(([name, value]) => `${name} ${value}`).join(', ')}.`)
  out.push('')
  out.push(markdownTable([
    'phase', 'readings', 'readings/s', 'vs limit', 'vs naive', 'ack ms p50 / p95 / p99 / max',
    'server RSS peak', 'CPU cores server / pg / gen', 'errors', 'stored = acked'
  ], rows))
  const exp = result.export
  if (exp) {
    out.push('')
    if (exp.status === 'measured' && exp.service && exp.direct) {
      out.push(`CSV export of a ${int(exp.readings)}-reading session: GET /sessions/:id/readings.csv ${int(exp.service.readingsPerSecond)} readings/s ` +
        `(${fixed(exp.service.seconds, 2)} s, ${int(exp.service.bytes / 1e6)} MB) vs COPY (select ...) TO STDOUT ${int(exp.direct.readingsPerSecond)} readings/s ` +
        `(${fixed(exp.direct.seconds, 2)} s, same query): ${pct(exp.ratio)}.` +
        (exp.rawCopy ? ` Raw columns without formatting: ${int(exp.rawCopy.readingsPerSecond)} readings/s.` : ''))
    } else {
      out.push(`CSV export: ${exp.status}: ${exp.message}` +
        (exp.direct ? ` (COPY TO alone: ${int(exp.direct.readingsPerSecond)} readings/s)` : ''))
    }
  }
  const push = result.push
  if (push) {
    out.push('')
    out.push(`HTTP push: ${int(push.phones)} Sensor Logger phones, one message of 300 readings a second each to POST /ingest/sensor-logger/<ingest key>: ` +
      `${int(push.readingsPerSecond)} readings/s, ack (HTTP 200) p50 ${fixed(push.ackLatencyMs.p50)} ms, p99 ${fixed(push.ackLatencyMs.p99)} ms; ` +
      `${int(push.messagesAcked)}/${int(push.messagesSent)} messages acknowledged, ${push.retries} 429/503 retries; stored = acked: ${push.verification.ok ? 'yes' : 'NO'}` +
      (result.realtime && result.ratios.pushVsRealtime !== undefined
        ? `; push ÷ WebSocket real time (${int(result.realtime.phones)} phones, ${int(result.realtime.readingsPerSecond)} readings/s): ${times(result.ratios.pushVsRealtime)}.`
        : '.'))
  }
  const watched = result.floodWatched
  if (watched) {
    out.push('')
    out.push(`Flood with ${watched.live.streams} GET /live stream(s) open: ${int(watched.readingsPerSecond)} readings/s` +
      (result.flood ? ` (${pct(watched.readingsPerSecond / result.flood.readingsPerSecond)} of the flood without)` : '') +
      `, ack p99 ${fixed(watched.ackLatencyMs.p99, 1)} ms; the watchers received ${int(watched.live.notices)} notices about ${watched.live.sessions} sessions; ` +
      `stored = acked: ${watched.verification.ok ? 'yes' : 'NO'}.`)
  }
  const plot = result.plot
  if (plot?.first && plot.best) {
    out.push('')
    out.push(`First plot of the same session: GET /sessions/:id/readings/summary?buckets=${plot.buckets} ${int(plot.first.milliseconds)} ms ` +
      `(best of ${result.options.exportRepeats} ${int(plot.best.milliseconds)} ms, ${int(plot.first.bytes / 1000)} kB)` +
      (plot.rowsOnceMs !== undefined ? ` vs reading its rows once ${int(plot.rowsOnceMs)} ms (rows once ÷ summary: ${times(plot.ratio)}).` : '.'))
  } else if (plot) {
    out.push('')
    out.push(`First plot: ${plot.status}: ${plot.message}`)
  }
  if (result.datasetExport) out.push('', formatDatasetExport(result.datasetExport))
  if (result.stepSearch) out.push('', formatStepSearch(result.stepSearch))
  const sessionReport = result.sessionReport
  if (sessionReport) {
    out.push('')
    for (const size of sessionReport.sizes) {
      out.push(`Completeness report of a ${int(size.readings)}-reading session (${fixed(size.sessionMinutes)} min at 3 x 100 Hz): ` +
        `ensureSessionReport ${int(size.report.readingsPerSecond)} readings/s (${fixed(size.report.seconds, 3)} s) vs reading its rows once ` +
        `${int(size.baseline.readingsPerSecond)} readings/s (${fixed(size.baseline.seconds, 3)} s): ${times(size.ratio)} the read, best of ${sessionReport.repeats}; ` +
        `found exactly the built-in lost batch and gaps: ${size.verified ? 'yes' : 'NO'}.`)
    }
    if (sessionReport.status === 'failed') out.push(`Completeness report: failed: ${sessionReport.message}`)
  }
  out.push('')
  out.push(markdownTable(['target', 'goal', 'measured', 'met'], result.targets.map(target =>
    [target.name, target.goal, target.value, target.met === undefined ? 'n/a' : target.met ? 'yes' : 'NO'])))
  for (const phase of [result.realtime, result.flood]) {
    if (!phase) continue
    const gen = phase.generatorEventLoopUtilization.map(value => pct(value)).join(', ')
    out.push('')
    out.push(`${phase.mode}: CPU per reading: service ${fixed(phase.cpuMicrosPerReading.server, 2)} µs, ` +
      `PostgreSQL ${fixed(phase.cpuMicrosPerReading.postgres, 2)} µs, generator ${fixed(phase.cpuMicrosPerReading.generator, 2)} µs; machine CPU ${fixed(phase.cpu.machine, 2)} cores busy, ${fixed(phase.cpu.other, 2)} of them by other processes; generator event loops ${gen} busy; ` +
      `${phase.retries} storage_unavailable retries; ${phase.windowStalls} window stalls; ${phase.loginFallbacks} login fallbacks; ` +
      `server exit code ${phase.serverExitCode}; sessions ${phase.verification.sessions}, integrity ok ${phase.integrityOk}; ` +
      `WAL written ${int(phase.checkpoints.walBytes / 2 ** 20)} MB (${int(phase.checkpoints.walBytes / Math.max(1, phase.readingsAcked))} bytes a reading, sessions' start and end included); ` +
      `checkpoints during the phase: ${phase.checkpoints.requested} by WAL volume, ${phase.checkpoints.timed} timed.`)
    const spread = phase.phoneSpread
    out.push(`${phase.mode}: per phone: median ack ms typical ${fixed(spread.medianAckMs.p50)}, p99 of phones ${fixed(spread.medianAckMs.p99)}, worst ${fixed(spread.medianAckMs.max)}; ` +
      `readings acked fewest / median / most ${int(spread.readingsAcked.min)} / ${int(spread.readingsAcked.p50)} / ${int(spread.readingsAcked.max)}.`)
    out.push(`${phase.mode}: ack p50 / p99 / max by ${phase.timelineStepSeconds} s of sending: ` +
      phase.ackLatencyTimeline.map(slice => `${slice.fromSecond}s ${fixed(slice.p50, 0)}/${fixed(slice.p99, 0)}/${fixed(slice.max, 0)}`).join(', '))
  }
  if (result.limit || result.naive) {
    out.push('')
    out.push('PostgreSQL CPU per reading: ' + [
      result.limit ? `binary COPY ${fixed(result.limit.postgresMicrosPerReading, 2)} µs` : '',
      result.naive ? `375-row INSERTs ${fixed(result.naive.postgresMicrosPerReading, 2)} µs` : ''
    ].filter(Boolean).join(', ') + '.')
  }
  if (result.warnings.length > 0) out.push('', ...result.warnings.map(line => `Note: ${line}`))
  if (result.problems.length > 0) out.push('', ...result.problems.map(line => `PROBLEM: ${line}`))
  return out.join('\n')
}

/** Writes the full result as JSON into dir and returns the file's path. */
export async function writeResultJson (result: BenchResult, dir: string, stamp: string): Promise<string> {
  await mkdir(dir, { recursive: true })
  const file = path.join(dir, `${stamp}.json`)
  await writeFile(file, JSON.stringify(result, null, 2) + '\n')
  return file
}
