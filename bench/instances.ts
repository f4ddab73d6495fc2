/**
 * `npm run bench -- --instances N`: the same phones against one instance, then
 * against N instances behind a real HAProxy (the shipped configuration), with
 * one instance killed (SIGKILL) mid-stream. Its phones reconnect through
 * HAProxy, resume their sessions on the others and resend what was not
 * acknowledged; afterwards every session must hold exactly what was acked.
 */
import os from 'node:os'
import path from 'node:path'
import type { Pool } from '../src/db/pool.js'
import type { StorageInfo } from '../src/db/startup/storage.js'
import { expectedRealtimeBatches, latencyTimeline, scanServerLog, type BenchOptions } from './bench.js'
import { assertDisposable, createBenchUsers, describeDatabase, prepareDatabase, resolveBenchDatabase, truncateReadings } from './database.js'
import { ensureHaproxy, startHaproxy, type Haproxy, type ServerStat } from './haproxy.js'
import { runLoad, type LoadRun } from './load.js'
import type { PhoneMode, PhoneResult, PhoneUser } from './phone.js'
import { machineCpuSeconds, PostgresCpuTracker, processCpuSeconds, sampleMachineLoad, startRssSampler, waitForQuiet } from './proc-stats.js'
import { BATCH_INTERVAL_MS, READINGS_PER_BATCH } from './readings.js'
import { freePort, startServerProcess, type ServerProcess } from './server-process.js'
import { summarizeLatencies, type LatencySummary } from './stats.js'
import { verifySessions, type Verification } from './verify.js'

export interface InstancesOptions {
  /** Service instances behind HAProxy (>= 2). */
  instances: number
  /** Seconds into the stream at which the first instance is killed; 0: no kill. */
  killAtSeconds: number
  mode: PhoneMode
  phones: number
  seconds: number
  bench: BenchOptions
}

/** Cores used on average over the streaming phase (1.0 = one core busy). */
export interface InstancesCpu {
  services: number
  haproxy: number
  postgres: number
  generator: number
  machine: number
}

export interface KillReport {
  instance: string
  /** When the SIGKILL was sent, in seconds after streaming started. */
  atSecond: number
  /** Connections HAProxy held to each instance just before the kill: how the phones were spread. */
  spreadBeforeKill: ServerStat[]
  /** The same near the end of the stream: everything on the survivors. */
  spreadAtEnd: ServerStat[]
  /** Kill -> HAProxy marks the instance DOWN (health check or refused connection). */
  markedDownAfterMs: number | undefined
  /** Phones that resumed their session on a new socket. */
  phonesResumed: number
  /** Socket lost -> session resumed. */
  resumeMs: LatencySummary
  /** Batches sent again because their ack was lost with the instance. */
  batchesResent: number
}

export interface InstancesPhase {
  label: 'single' | 'balanced'
  instances: number
  /** Through HAProxy (balanced) or straight to the instance (single). */
  viaHaproxy: boolean
  mode: PhoneMode
  phones: number
  seconds: number
  offeredReadingsPerSecond?: number
  expectedReadings?: number
  readingsSent: number
  readingsAcked: number
  readingsPerSecond: number
  /** Real time: every batch produced on schedule was acknowledged. */
  allAcked?: boolean
  ackLatencyMs: LatencySummary
  ackLatencyTimeline: Array<{ fromSecond: number } & LatencySummary>
  timelineStepSeconds: number
  cpu: InstancesCpu
  cpuMicrosPerReading: InstancesCpu
  /** Peak RSS of each instance, in MB. */
  instancePeakRssMb: number[]
  /** How busy each phone generator's event loop was while streaming (near 1: the phones lagged their schedule). */
  generatorEventLoopUtilization: number[]
  kill?: KillReport
  errors: number
  errorSamples: string[]
  failedToStart: number
  integrityOk: number
  serverLogErrors: number
  serverLogSamples: string[]
  verification: Verification
}

export interface InstancesResult {
  startedAt: string
  finishedAt: string
  machine: { cpus: number, cpuModel: string, memoryGb: number, node: string, busyCoresBeforeStart: number }
  database: { url: string, source: string, storage: StorageInfo }
  options: Omit<InstancesOptions, 'bench'> & { window: number, workers: number, serverEnv: Record<string, string> }
  single: InstancesPhase
  balanced: InstancesPhase
  /** balanced / single. */
  ratios: Record<string, number>
  correct: boolean
  problems: string[]
  warnings: string[]
}

interface Context {
  options: InstancesOptions
  url: string
  databaseName: string
  pool: Pool
  users: PhoneUser[]
}

/** Runs the single-instance phase, then the balanced one with the kill, and checks both. */
export async function runInstancesBench (options: InstancesOptions): Promise<InstancesResult> {
  if (options.instances < 2) throw new Error(`--instances must be at least 2, got ${options.instances}`)
  if (options.killAtSeconds >= options.seconds) throw new Error(`--kill-at (${options.killAtSeconds} s) must fall within --seconds (${options.seconds})`)
  const { bench } = options
  const say = bench.say
  const startedAt = new Date().toISOString()
  const haproxyBinary = await ensureHaproxy(say)
  const database = await resolveBenchDatabase({ databaseUrl: bench.databaseUrl, loadtest: bench.loadtest, say })
  let pool: Pool | undefined
  try {
    assertDisposable(database.url, bench.allowTruncate || database.source.includes('container'))
    const prepared = await prepareDatabase(database.url)
    pool = prepared.pool
    say(`database: ${describeDatabase(database.url)} (${database.source}; readings in a ${prepared.storage.readingsHypertable ? 'TimescaleDB hypertable' : 'plain PostgreSQL table'})`)
    const busyCoresBeforeStart = await sampleMachineLoad()
    say(`creating ${options.phones} bench users with tokens...`)
    const users = await createBenchUsers(pool, options.phones)
    const ctx: Context = { options, url: database.url, databaseName: decodeURIComponent(new URL(database.url).pathname.slice(1)), pool, users }

    const single = await runPhase(ctx, 'single', haproxyBinary)
    const balanced = await runPhase(ctx, 'balanced', haproxyBinary)
    const result: InstancesResult = {
      startedAt,
      finishedAt: new Date().toISOString(),
      machine: { cpus: os.availableParallelism(), cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGb: Math.round(os.totalmem() / 2 ** 30), node: process.version, busyCoresBeforeStart },
      database: { url: describeDatabase(database.url), source: database.source, storage: prepared.storage },
      options: {
        instances: options.instances,
        killAtSeconds: options.killAtSeconds,
        mode: options.mode,
        phones: options.phones,
        seconds: options.seconds,
        window: bench.window,
        workers: bench.workers,
        serverEnv: bench.serverEnv
      },
      single,
      balanced,
      ratios: ratiosOf(single, balanced),
      correct: true,
      problems: [],
      warnings: []
    }
    judge(result)
    return result
  } finally {
    await pool?.end()
    await database.stop()
  }
}

function ratiosOf (single: InstancesPhase, balanced: InstancesPhase): Record<string, number> {
  const ratio = (a: number, b: number) => b > 0 ? a / b : NaN
  return {
    readingsPerSecond: ratio(balanced.readingsPerSecond, single.readingsPerSecond),
    ackP50: ratio(balanced.ackLatencyMs.p50, single.ackLatencyMs.p50),
    ackP99: ratio(balanced.ackLatencyMs.p99, single.ackLatencyMs.p99),
    serviceMicrosPerReading: ratio(balanced.cpuMicrosPerReading.services, single.cpuMicrosPerReading.services),
    postgresMicrosPerReading: ratio(balanced.cpuMicrosPerReading.postgres, single.cpuMicrosPerReading.postgres),
    machineMicrosPerReading: ratio(balanced.cpuMicrosPerReading.machine, single.cpuMicrosPerReading.machine),
    peakRssAllInstances: ratio(sum(balanced.instancePeakRssMb), sum(single.instancePeakRssMb))
  }
}

/** What makes the run wrong: anything not stored exactly once, and a kill whose phones did not all resume. */
function judge (result: InstancesResult): void {
  for (const phase of [result.single, result.balanced]) {
    const label = `${phase.label}:`
    if (!phase.verification.ok) result.problems.push(`${label} stored readings do not match acks: ${phase.verification.problems.join('; ')}`)
    if (phase.errors > 0) result.problems.push(`${label} ${phase.errors} phone errors, e.g. ${phase.errorSamples.slice(0, 3).join(' | ')}`)
    if (phase.failedToStart > 0) result.problems.push(`${label} ${phase.failedToStart} phones could not start`)
    if (phase.integrityOk !== phase.phones) result.problems.push(`${label} ${phase.phones - phase.integrityOk} sessions did not end with integrity ok`)
    if (phase.serverLogErrors > 0) result.problems.push(`${label} ${phase.serverLogErrors} error lines in the service logs, e.g. ${phase.serverLogSamples[0] ?? ''}`)
    if (phase.readingsAcked === 0) result.problems.push(`${label} no reading was acknowledged`)
    if (phase.readingsAcked !== phase.readingsSent) result.problems.push(`${label} ${phase.readingsSent - phase.readingsAcked} readings sent were never acknowledged`)
    if (phase.allAcked === false) {
      // Due but never sent: with busy generators, the phones' own timers fell behind their schedule.
      const busiest = Math.max(0, ...phase.generatorEventLoopUtilization)
      const unsent = `${label} ${(phase.expectedReadings ?? 0) - phase.readingsSent} readings due before the end were not yet produced when the phones stopped ` +
        `(generator event loops up to ${(busiest * 100).toFixed(0)}% busy)`
      if (busiest > 0.9) result.warnings.push(`${unsent}: the machine could not run the phones on time`)
      else result.problems.push(unsent)
    }
  }
  const kill = result.balanced.kill
  if (kill) {
    const victim = kill.spreadBeforeKill.find(server => server.name === kill.instance)
    const onVictim = victim?.current ?? 0
    if (onVictim === 0) result.problems.push(`balanced: no phone was connected to ${kill.instance} when it was killed: the phones were not spread`)
    if (kill.phonesResumed !== onVictim) {
      result.problems.push(`balanced: ${onVictim} phones were on ${kill.instance} when it was killed, ${kill.phonesResumed} resumed`)
    }
    const stillOnVictim = kill.spreadAtEnd.find(server => server.name === kill.instance)?.current ?? 0
    if (stillOnVictim > 0) result.problems.push(`balanced: HAProxy still held ${stillOnVictim} connections to the killed ${kill.instance}`)
    if (kill.markedDownAfterMs === undefined) result.warnings.push(`balanced: HAProxy did not report ${kill.instance} DOWN`)
  } else if (result.options.killAtSeconds > 0) {
    result.problems.push('balanced: the kill did not happen')
  } else {
    result.warnings.push('balanced: no instance was killed (--kill-at 0)')
  }
  result.correct = result.problems.length === 0
}

/** CPU seconds of a set of processes, kept from their last sample once they exit (the killed instance). */
class ProcessCpuTracker {
  private readonly first = new Map<number, number>()
  private readonly last = new Map<number, number>()
  private readonly timer: NodeJS.Timeout

  constructor (private readonly pids: number[]) {
    for (const pid of pids) {
      const seconds = processCpuSeconds(pid) ?? 0
      this.first.set(pid, seconds)
      this.last.set(pid, seconds)
    }
    this.timer = setInterval(() => this.sample(), 250)
    this.timer.unref()
  }

  sample (): void {
    for (const pid of this.pids) {
      const seconds = processCpuSeconds(pid)
      if (seconds !== undefined) this.last.set(pid, seconds)
    }
  }

  seconds (): number {
    this.sample()
    let total = 0
    for (const [pid, last] of this.last) total += last - (this.first.get(pid) ?? last)
    return total
  }

  stop (): void {
    clearInterval(this.timer)
  }
}

interface CpuTrackers {
  services: ProcessCpuTracker
  haproxy: ProcessCpuTracker
  postgres: PostgresCpuTracker
  generator?: ProcessCpuTracker
}

interface CpuMark { at: number, services: number, haproxy: number, postgres: number, generator: number, machine: number }

const cpuMark = (trackers: CpuTrackers): CpuMark => ({
  at: performance.now(),
  services: trackers.services.seconds(),
  haproxy: trackers.haproxy.seconds(),
  postgres: trackers.postgres.seconds(),
  generator: trackers.generator?.seconds() ?? 0,
  machine: machineCpuSeconds().busy
})

async function runPhase (ctx: Context, label: 'single' | 'balanced', haproxyBinary: string): Promise<InstancesPhase> {
  const { options } = ctx
  const { bench } = options
  const count = label === 'single' ? 1 : options.instances
  await truncateReadings(ctx.pool)
  if (bench.quietWaitSeconds > 0) await waitForQuiet(bench.quietWaitSeconds * 1000)
  bench.say(`${label}: ${count} instance${count > 1 ? 's behind HAProxy' : ', phones connected directly'}, ${options.phones} ${options.mode} phones for ${options.seconds} s` +
    (label === 'balanced' && options.killAtSeconds > 0 ? `, instance-1 killed (SIGKILL) at ${options.killAtSeconds} s` : '') + '...')
  const servers: ServerProcess[] = []
  let haproxy: Haproxy | undefined
  const logFile = (name: string) => path.join(bench.resultsDir, `${bench.stamp}-instances-${label}-${name}.log`)
  try {
    for (let i = 1; i <= count; i++) {
      servers.push(await startServerProcess({
        databaseUrl: ctx.url,
        env: bench.serverEnv,
        logFile: logFile(`instance-${i}`),
        cpuProfDir: bench.cpuProf ? path.join(bench.resultsDir, `${bench.stamp}-instances-${label}-cpuprofile`) : undefined,
        code: bench.serverCode
      }))
    }
    if (label === 'balanced') {
      haproxy = await startHaproxy({
        binary: haproxyBinary,
        port: await freePort(),
        servers: servers.map((server, i) => ({ name: `instance-${i + 1}`, port: Number(new URL(server.baseUrl).port) })),
        logFile: logFile('haproxy'),
        maxConnections: options.phones * 2 + 100
      })
    }
    return await streamAndMeasure(ctx, label, servers, haproxy)
  } finally {
    await haproxy?.stop()
    await Promise.all(servers.map(server => server.stop()))
  }
}

async function streamAndMeasure (ctx: Context, label: 'single' | 'balanced', servers: ServerProcess[], haproxy: Haproxy | undefined): Promise<InstancesPhase> {
  const { options } = ctx
  const { bench } = options
  const entry = haproxy ?? servers[0]!
  const rss = servers.map(server => startRssSampler(server.pid))
  const trackers: CpuTrackers = {
    services: new ProcessCpuTracker(servers.map(server => server.pid)),
    haproxy: new ProcessCpuTracker(haproxy ? [haproxy.pid] : []),
    postgres: new PostgresCpuTracker(ctx.databaseName)
  }
  let start: CpuMark | undefined
  let end: CpuMark | undefined
  let killTimer: NodeJS.Timeout | undefined
  let endTimer: NodeJS.Timeout | undefined
  let killing: Promise<Omit<KillReport, 'phonesResumed' | 'resumeMs' | 'batchesResent' | 'spreadAtEnd'>> | undefined
  let spreadAtEnd: Promise<ServerStat[]> | undefined
  let run: LoadRun
  try {
    run = await runLoad({
      mode: options.mode,
      phones: options.phones,
      seconds: options.seconds,
      window: bench.window,
      workers: bench.workers,
      timestampFormat: bench.timestampFormat,
      login: bench.login,
      baseUrl: entry.baseUrl,
      wsUrl: entry.wsUrl,
      users: ctx.users,
      timeoutMs: bench.timeoutMs,
      resume: true
    }, {
      beforeStart: pids => {
        trackers.generator = new ProcessCpuTracker(pids)
        start = cpuMark(trackers)
        // runLoad starts streaming 300 ms after this hook.
        const streamStart = performance.now() + 300
        if (haproxy && options.killAtSeconds > 0) {
          killTimer = setTimeout(() => {
            killing = killFirstInstance(servers[0]!, haproxy, trackers, (performance.now() - streamStart) / 1000)
          }, 300 + options.killAtSeconds * 1000)
        }
        if (haproxy) {
          endTimer = setTimeout(() => { spreadAtEnd = haproxy.serverStats() }, 300 + Math.max(0, options.seconds - 1) * 1000)
        }
      },
      afterDone: () => { end = cpuMark(trackers) }
    })
  } finally {
    clearTimeout(killTimer)
    clearTimeout(endTimer)
    trackers.services.stop()
    trackers.haproxy.stop()
    trackers.postgres.stop()
    trackers.generator?.stop()
  }
  const killed = await killing
  const results = run.results
  const readingsAcked = sumOf(results, phone => phone.readingsAcked)
  const lastAck = Math.max(run.startAt, ...results.map(phone => phone.lastAckAt ?? 0))
  const acked = new Map<number, number>()
  for (const phone of results) if (phone.sessionId !== undefined) acked.set(phone.sessionId, phone.readingsAcked)
  const verification = await verifySessions(ctx.pool, acked)
  const logs = await Promise.all(servers.map(server => scanServerLog(server.logFile)))
  const cpu = start && end ? coresBetween(start, end) : { services: 0, haproxy: 0, postgres: 0, generator: 0, machine: 0 }
  const cpuSeconds = start && end ? (end.at - start.at) / 1000 : 0
  const perReading = (cores: number) => readingsAcked > 0 ? cores * cpuSeconds / readingsAcked * 1e6 : 0
  const timelineStepSeconds = options.seconds <= 10 ? 1 : options.seconds <= 60 ? 2 : 5
  const phase: InstancesPhase = {
    label,
    instances: servers.length,
    viaHaproxy: haproxy !== undefined,
    mode: options.mode,
    phones: options.phones,
    seconds: options.seconds,
    readingsSent: sumOf(results, phone => phone.readingsSent),
    readingsAcked,
    readingsPerSecond: readingsAcked / Math.max(0.001, (lastAck - run.startAt) / 1000),
    ackLatencyMs: summarizeLatencies(results.flatMap(phone => phone.latenciesMs)),
    ackLatencyTimeline: latencyTimeline(results, run.startAt, options.seconds, timelineStepSeconds),
    timelineStepSeconds,
    cpu,
    cpuMicrosPerReading: {
      services: perReading(cpu.services),
      haproxy: perReading(cpu.haproxy),
      postgres: perReading(cpu.postgres),
      generator: perReading(cpu.generator),
      machine: perReading(cpu.machine)
    },
    instancePeakRssMb: rss.map(sampler => sampler.stop().peakMb),
    generatorEventLoopUtilization: run.generatorEventLoopUtilization,
    errors: sumOf(results, phone => phone.errorCount),
    errorSamples: results.flatMap(phone => phone.errors.map(error => `phone ${phone.index}: ${error}`)).slice(0, 10),
    failedToStart: run.failedToStart,
    integrityOk: results.filter(phone => phone.integrity === 'ok').length,
    serverLogErrors: sum(logs.map(log => log.errors)),
    serverLogSamples: logs.flatMap(log => log.samples).slice(0, 5),
    verification
  }
  if (options.mode === 'realtime') {
    phase.offeredReadingsPerSecond = options.phones * READINGS_PER_BATCH * (1000 / BATCH_INTERVAL_MS)
    phase.expectedReadings = expectedRealtimeBatches(options.phones, options.seconds) * READINGS_PER_BATCH
    phase.allAcked = readingsAcked === phase.expectedReadings
  }
  const resumed = results.filter(phone => phone.resumes > 0)
  if (killed) {
    phase.kill = {
      ...killed,
      spreadAtEnd: await (spreadAtEnd ?? Promise.resolve([])),
      phonesResumed: resumed.length,
      resumeMs: summarizeLatencies(results.flatMap(phone => phone.resumeMs)),
      batchesResent: sumOf(results, phone => phone.resent)
    }
  } else if (resumed.length > 0) {
    phase.errors += resumed.length
    phase.errorSamples.push(`${resumed.length} phones lost their socket and resumed although no instance was killed`)
  }
  const latency = phase.ackLatencyMs
  bench.say(`  ${Math.round(phase.readingsPerSecond).toLocaleString('en')} readings/s, ack p50/p99/max ${latency.p50.toFixed(1)}/${latency.p99.toFixed(1)}/${latency.max.toFixed(1)} ms, ` +
    `${phase.errors} errors, stored = acked: ${verification.ok}` +
    (phase.kill ? `; killed ${phase.kill.instance} at ${phase.kill.atSecond.toFixed(1)} s, ${phase.kill.phonesResumed} phones resumed (p50/max ${phase.kill.resumeMs.p50.toFixed(0)}/${phase.kill.resumeMs.max.toFixed(0)} ms)` : ''))
  return phase
}

async function killFirstInstance (server: ServerProcess, haproxy: Haproxy, trackers: CpuTrackers, atSecond: number) {
  const instance = 'instance-1'
  const spreadBeforeKill = await haproxy.serverStats()
  trackers.services.sample()
  const killedAt = performance.now()
  process.kill(server.pid, 'SIGKILL')
  const markedDownAfterMs = await haproxy.waitForDown(instance).then(() => performance.now() - killedAt, () => undefined)
  return { instance, atSecond, spreadBeforeKill, markedDownAfterMs }
}

function coresBetween (from: CpuMark, to: CpuMark): InstancesCpu {
  const seconds = Math.max(1e-3, (to.at - from.at) / 1000)
  const per = (key: keyof InstancesCpu) => (to[key] - from[key]) / seconds
  return { services: per('services'), haproxy: per('haproxy'), postgres: per('postgres'), generator: per('generator'), machine: per('machine') }
}

const sum = (values: number[]) => values.reduce((total, value) => total + value, 0)

function sumOf (results: PhoneResult[], pick: (phone: PhoneResult) => number): number {
  let total = 0
  for (const phone of results) total += pick(phone)
  return total
}
