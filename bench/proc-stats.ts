import { readdirSync, readFileSync } from 'node:fs'

/**
 * Linux /proc readings: a process's CPU time and resident memory, the CPU
 * time of all PostgreSQL processes, and the machine's busy time. Everything
 * returns undefined (or 0) off Linux so the bench still runs elsewhere.
 */

// USER_HZ is 100 on every Linux build that matters; /proc times are in these ticks.
const TICKS_PER_SECOND = 100

function readText (file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
}

/** utime + stime of a process in seconds. */
export function processCpuSeconds (pid: number): number | undefined {
  const stat = readText(`/proc/${pid}/stat`)
  if (!stat) return undefined
  // The command name (field 2) may contain spaces; fields after ") " are fixed.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND
}

/** VmRSS (and the kernel's peak, VmHWM) in MB. */
export function processMemoryMb (pid: number): { rss: number, hwm: number } | undefined {
  const status = readText(`/proc/${pid}/status`)
  if (!status) return undefined
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0)
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 }
}

// A client backend's title: "postgres: 15/main: <user> <database> 127.0.0.1(54321) idle".
const CLIENT_BACKEND = /^postgres: .*? (\S+) (?:\S+\(\d+\)|\[local\])/

/**
 * CPU seconds of each PostgreSQL process working for `database`: its client
 * backends plus the shared background processes (WAL writer, checkpointer...).
 * Backends of other databases on the same server (other people's test runs)
 * are left out, so they show up as background load.
 */
export function postgresProcessCpu (database: string): Map<number, number> {
  const times = new Map<number, number>()
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return times
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    const stat = readText(`/proc/${entry}/stat`)
    if (!stat || !stat.includes('(postgres)')) continue
    const title = readText(`/proc/${entry}/cmdline`)?.replace(/\0/g, ' ').trim() ?? ''
    const backendOf = CLIENT_BACKEND.exec(title)?.[1]
    if (backendOf !== undefined && backendOf !== database) continue
    const seconds = processCpuSeconds(Number(entry))
    if (seconds !== undefined) times.set(Number(entry), seconds)
  }
  return times
}

/**
 * PostgreSQL CPU used since the tracker started. Backends come and go (pools
 * close idle connections), so each process is sampled periodically and
 * counted from when it was first seen (or from 0 if it started later) to
 * when it was last seen: an exiting backend neither vanishes from the sum
 * nor takes its earlier CPU with it.
 */
export class PostgresCpuTracker {
  private readonly first = new Map<number, number>()
  private readonly last = new Map<number, number>()
  private readonly timer: NodeJS.Timeout

  constructor (private readonly database: string, intervalMs = 250) {
    this.sample(true)
    this.timer = setInterval(() => this.sample(false), intervalMs)
    this.timer.unref()
  }

  private sample (initial: boolean): void {
    for (const [pid, seconds] of postgresProcessCpu(this.database)) {
      if (!this.first.has(pid)) this.first.set(pid, initial ? seconds : 0)
      this.last.set(pid, seconds)
    }
  }

  /** CPU seconds consumed since the start, sampled now. */
  seconds (): number {
    this.sample(false)
    let total = 0
    for (const [pid, last] of this.last) total += last - (this.first.get(pid) ?? 0)
    return total
  }

  stop (): void {
    clearInterval(this.timer)
  }
}

/** Busy and total CPU seconds of the whole machine (all cores) from /proc/stat. */
export function machineCpuSeconds (): { busy: number, total: number } {
  const line = readText('/proc/stat')?.split('\n')[0]
  if (!line) return { busy: 0, total: 0 }
  const values = line.trim().split(/\s+/).slice(1).map(Number)
  const total = values.reduce((sum, v) => sum + v, 0)
  const idle = (values[3] ?? 0) + (values[4] ?? 0)
  return { busy: (total - idle) / TICKS_PER_SECOND, total: total / TICKS_PER_SECOND }
}

export interface CpuSnapshot {
  at: number
  server: number
  generator: number
  postgres: number
  bench: number
  machineBusy: number
}

/** CPU seconds consumed so far by the server, the generators, PostgreSQL (for the tracker's database), this process and the machine. */
export function cpuSnapshot (serverPid: number | undefined, generatorPids: number[], postgres: PostgresCpuTracker): CpuSnapshot {
  const own = process.cpuUsage()
  return {
    at: performance.now(),
    server: serverPid === undefined ? 0 : processCpuSeconds(serverPid) ?? 0,
    generator: generatorPids.reduce((sum, pid) => sum + (processCpuSeconds(pid) ?? 0), 0),
    postgres: postgres.seconds(),
    bench: (own.user + own.system) / 1e6,
    machineBusy: machineCpuSeconds().busy
  }
}

/** Cores used on average between two snapshots (1.0 = one core fully busy). */
export interface CpuUsage {
  server: number
  generator: number
  postgres: number
  machine: number
  /** Everything else on the machine: other people's processes and databases. */
  other: number
}

export function cpuBetween (from: CpuSnapshot, to: CpuSnapshot): CpuUsage {
  const seconds = Math.max(1e-3, (to.at - from.at) / 1000)
  const per = (key: keyof CpuSnapshot) => (to[key] - from[key]) / seconds
  const usage = { server: per('server'), generator: per('generator'), postgres: per('postgres'), machine: per('machineBusy') }
  return { ...usage, other: Math.max(0, usage.machine - usage.server - usage.generator - usage.postgres - per('bench')) }
}

/** Cores busy with anything over the next `ms` milliseconds: the machine's background load. */
export async function sampleMachineLoad (ms = 1000): Promise<number> {
  const from = machineCpuSeconds().busy
  const started = performance.now()
  await new Promise(resolve => setTimeout(resolve, ms))
  return (machineCpuSeconds().busy - from) / ((performance.now() - started) / 1000)
}

/** Samples a process's VmRSS every intervalMs and keeps the peak. */
export function startRssSampler (pid: number, intervalMs = 200): { stop: () => { peakMb: number, lastMb: number } } {
  let peakMb = 0
  let lastMb = 0
  const sample = () => {
    const memory = processMemoryMb(pid)
    if (!memory) return
    lastMb = memory.rss
    peakMb = Math.max(peakMb, memory.rss)
  }
  sample()
  const timer = setInterval(sample, intervalMs)
  timer.unref()
  return {
    stop: () => {
      sample()
      clearInterval(timer)
      return { peakMb, lastMb }
    }
  }
}

/**
 * Waits (at most maxWaitMs) until the machine's busy cores over a second fall
 * to `threshold` or below; returns the last load seen. For shared machines.
 */
export async function waitForQuiet (maxWaitMs: number, threshold = 0.3): Promise<number> {
  const deadline = performance.now() + maxWaitMs
  let load = await sampleMachineLoad()
  while (load > threshold && performance.now() < deadline) load = await sampleMachineLoad()
  return load
}
