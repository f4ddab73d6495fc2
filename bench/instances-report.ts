import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { InstancesPhase, InstancesResult } from './instances.js'
import { markdownTable } from './report.js'

const int = (value: number) => Math.round(value).toLocaleString('en')
const fixed = (value: number, digits = 1) => Number.isFinite(value) ? value.toFixed(digits) : '-'
const times = (value: number | undefined) => value === undefined || !Number.isFinite(value) ? '-' : `${value.toFixed(2)}x`

function phaseLabel (phase: InstancesPhase): string {
  const load = phase.mode === 'realtime'
    ? `real time, ${int(phase.phones)} phones x ${phase.seconds} s (offered ${int(phase.offeredReadingsPerSecond ?? 0)}/s)`
    : `flood, ${int(phase.phones)} phones x ${phase.seconds} s`
  if (!phase.viaHaproxy) return `single: 1 instance, phones connected directly; ${load}`
  const kill = phase.kill ? `, ${phase.kill.instance} killed at ${fixed(phase.kill.atSecond)} s` : ''
  return `balanced: ${phase.instances} instances behind HAProxy${kill}; ${load}`
}

function phaseRow (phase: InstancesPhase): string[] {
  const latency = phase.ackLatencyMs
  const cpu = phase.cpuMicrosPerReading
  return [
    phaseLabel(phase),
    int(phase.readingsAcked),
    int(phase.readingsPerSecond),
    `${fixed(latency.p50)} / ${fixed(latency.p95)} / ${fixed(latency.p99)} / ${fixed(latency.max)}`,
    `${fixed(cpu.services, 2)} / ${phase.viaHaproxy ? fixed(cpu.haproxy, 2) : '-'} / ${fixed(cpu.postgres, 2)} / ${fixed(cpu.generator, 2)} / ${fixed(cpu.machine, 2)}`,
    phase.instancePeakRssMb.map(mb => `${int(mb)}`).join(' + ') + ' MB',
    String(phase.errors + phase.failedToStart + phase.serverLogErrors),
    phase.verification.ok && phase.integrityOk === phase.phones ? 'yes' : 'NO'
  ]
}

/** The comparison as Markdown: both runs, their ratio, what the kill did, and any problems. */
export function formatInstancesReport (result: InstancesResult): string {
  const { single, balanced, ratios } = result
  const { storage } = result.database
  const out: string[] = []
  out.push(`Machine: ${result.machine.cpus} CPUs (${result.machine.cpuModel}), ${result.machine.memoryGb} GB, Node ${result.machine.node}; ` +
    `PostgreSQL ${storage.postgresVersion}, readings in a ${storage.readingsHypertable ? `TimescaleDB ${storage.timescaledbVersion} hypertable` : 'plain table'} ` +
    `(${result.database.source}). Instances, HAProxy, PostgreSQL and the phone generators share the machine ` +
    `(${fixed(result.machine.busyCoresBeforeStart, 2)} cores busy with other work just before the start). Window ${result.options.window}, ${result.options.workers} generator processes.`)
  out.push('')
  out.push(markdownTable([
    'run', 'readings acked', 'readings/s', 'ack ms p50 / p95 / p99 / max',
    'CPU µs per reading: instances / HAProxy / pg / gen / machine', 'RSS peak per instance', 'errors', 'stored = acked'
  ], [
    phaseRow(single),
    phaseRow(balanced),
    [
      'balanced ÷ single', '', times(ratios.readingsPerSecond),
      `${times(ratios.ackP50)} / - / ${times(ratios.ackP99)} / -`,
      `${times(ratios.serviceMicrosPerReading)} / - / ${times(ratios.postgresMicrosPerReading)} / - / ${times(ratios.machineMicrosPerReading)}`,
      `${times(ratios.peakRssAllInstances)} (sum)`, '', ''
    ]
  ]))
  const kill = balanced.kill
  if (kill) {
    const spread = (stats: typeof kill.spreadBeforeKill) => stats.map(server => `${server.name} ${server.current}`).join(', ') || 'unknown'
    out.push('')
    out.push(`Kill: ${kill.instance} got SIGKILL ${fixed(kill.atSecond)} s into the stream. Connections per instance (HAProxy) just before: ${spread(kill.spreadBeforeKill)}; ` +
      `a second before the end: ${spread(kill.spreadAtEnd)}. HAProxy marked it DOWN ${kill.markedDownAfterMs === undefined ? 'never (within 15 s)' : `after ${int(kill.markedDownAfterMs)} ms`}. ` +
      `${kill.phonesResumed} phones resumed their sessions through HAProxy on the survivors (socket lost -> session_already_exist: ` +
      `p50 ${fixed(kill.resumeMs.p50, 0)} ms, p99 ${fixed(kill.resumeMs.p99, 0)} ms, max ${fixed(kill.resumeMs.max, 0)} ms) and resent ${int(kill.batchesResent)} unacknowledged batches. ` +
      `Stored = acked = session totals for all ${balanced.verification.sessions} sessions: ${balanced.verification.ok ? 'yes' : 'NO'} ` +
      `(${int(balanced.verification.storedReadings)} readings, ${balanced.verification.duplicateReadings} duplicates).`)
  }
  for (const phase of [single, balanced]) {
    out.push('')
    out.push(`${phase.label}: ack p50 / p99 / max by ${phase.timelineStepSeconds} s of sending: ` +
      phase.ackLatencyTimeline.map(slice => `${slice.fromSecond}s ${fixed(slice.p50, 0)}/${fixed(slice.p99, 0)}/${fixed(slice.max, 0)}`).join(', '))
    out.push(`${phase.label}: cores busy: instances ${fixed(phase.cpu.services, 2)}, HAProxy ${fixed(phase.cpu.haproxy, 2)}, PostgreSQL ${fixed(phase.cpu.postgres, 2)}, ` +
      `generators ${fixed(phase.cpu.generator, 2)} (event loops ${phase.generatorEventLoopUtilization.map(value => `${(value * 100).toFixed(0)}%`).join(', ')} busy), machine ${fixed(phase.cpu.machine, 2)}` +
      (phase.allAcked === undefined ? '' : `; every batch produced on schedule acknowledged: ${phase.allAcked ? 'yes' : 'NO'}`) + '.')
  }
  if (result.warnings.length > 0) out.push('', ...result.warnings.map(line => `Note: ${line}`))
  if (result.problems.length > 0) out.push('', ...result.problems.map(line => `PROBLEM: ${line}`))
  return out.join('\n')
}

export async function writeInstancesJson (result: InstancesResult, dir: string, stamp: string): Promise<string> {
  await mkdir(dir, { recursive: true })
  const file = path.join(dir, `${stamp}-instances.json`)
  await writeFile(file, JSON.stringify(result, null, 2) + '\n')
  return file
}
