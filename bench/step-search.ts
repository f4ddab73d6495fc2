/**
 * The real-time step search (--realtime-steps): real-time phases of more and
 * more phones, each against a fresh service, until one is not kept up with
 * ack p99 under STEP_P99_LIMIT_MS; the last step that was is the most phones
 * the service keeps up with, and the first that was not is the knee. A step
 * that fails runs once more before the search stops: on a shared machine one
 * stall of the database (a checkpoint, another process) lifts a 30-second
 * phase's p99 over the limit, and a knee found by one stall is noise.
 */
import type { ServicePhaseResult } from './bench.js'
import { markdownTable } from './report.js'

/** A step passes when every batch produced on schedule was acknowledged, with ack p99 under this. */
export const STEP_P99_LIMIT_MS = 250

/** The steps the search runs unless told otherwise. */
export const DEFAULT_STEPS = [250, 500, 1000, 1500, 2000]

export interface StepResult {
  phones: number
  offeredReadingsPerSecond: number
  readingsPerSecond: number
  keptUp: boolean
  passed: boolean
  ackP50Ms: number
  ackP99Ms: number
  serverPeakRssMb: number
  /** RSS with every phone connected and its session created, before streaming. */
  serverRssConnectedMb: number
  cpuMicrosPerReading: ServicePhaseResult['cpuMicrosPerReading']
  storedEqualsAcked: boolean
  errors: number
  /** Checkpoints started by WAL volume during the step: each slows commits for a while. */
  walCheckpoints: number
  /** The worst-served phone's median ack ÷ the typical phone's: 1 is perfectly even. */
  phoneMedianAckSpread: number
  /** 1, or 2 when the step failed once and ran again (the second run counts). */
  attempts: number
  /** The first run's ack p99 when the step ran twice. */
  firstAttemptP99Ms?: number
}

export interface StepSearchResult {
  p99LimitMs: number
  steps: StepResult[]
  /** The largest step that passed; undefined when none did. */
  mostPhonesKeptUp: number | undefined
}

/** Runs the steps in increasing order and stops after the first that does not pass. */
export async function runStepSearch (steps: number[], runPhase: (phones: number) => Promise<ServicePhaseResult>, say: (line: string) => void): Promise<StepSearchResult> {
  const results: StepResult[] = []
  for (const phones of [...steps].sort((a, b) => a - b)) {
    say(`step search: ${phones} real-time phones...`)
    let step = stepOf(phones, await runPhase(phones), 1)
    if (!step.passed) {
      say(`step search: ${phones} phones did not pass (ack p99 ${step.ackP99Ms.toFixed(0)} ms); once more...`)
      step = { ...stepOf(phones, await runPhase(phones), 2), firstAttemptP99Ms: step.ackP99Ms }
    }
    results.push(step)
    if (!step.passed) break
  }
  const passed = results.filter(step => step.passed)
  return { p99LimitMs: STEP_P99_LIMIT_MS, steps: results, mostPhonesKeptUp: passed.at(-1)?.phones }
}

function stepOf (phones: number, phase: ServicePhaseResult, attempts: number): StepResult {
  const keptUp = Boolean(phase.keptUp)
  return {
    phones,
    offeredReadingsPerSecond: phase.offeredReadingsPerSecond ?? 0,
    readingsPerSecond: phase.readingsPerSecond,
    keptUp,
    passed: keptUp && phase.ackLatencyMs.p99 < STEP_P99_LIMIT_MS,
    ackP50Ms: phase.ackLatencyMs.p50,
    ackP99Ms: phase.ackLatencyMs.p99,
    serverPeakRssMb: phase.serverPeakRssMb,
    serverRssConnectedMb: phase.serverRssConnectedMb,
    cpuMicrosPerReading: phase.cpuMicrosPerReading,
    storedEqualsAcked: phase.verification.ok,
    errors: phase.errors + phase.failedToStart,
    walCheckpoints: phase.checkpoints.requested,
    phoneMedianAckSpread: phase.phoneSpread.medianAckMs.max / Math.max(0.001, phase.phoneSpread.medianAckMs.p50),
    attempts
  }
}

/** The search as a table and a verdict line, for the bench's report. */
export function formatStepSearch (search: StepSearchResult): string {
  const int = (value: number) => Math.round(value).toLocaleString('en')
  const rows = search.steps.map(step => [
    int(step.phones),
    int(step.offeredReadingsPerSecond),
    int(step.readingsPerSecond),
    step.keptUp ? 'yes' : 'no',
    `${step.ackP50Ms.toFixed(1)} / ${step.ackP99Ms.toFixed(1)}` + (step.firstAttemptP99Ms === undefined ? '' : ` (first run p99 ${step.firstAttemptP99Ms.toFixed(1)})`),
    `${int(step.serverPeakRssMb)} MB`,
    `${step.cpuMicrosPerReading.server.toFixed(2)} / ${step.cpuMicrosPerReading.postgres.toFixed(2)}`,
    `${step.phoneMedianAckSpread.toFixed(1)}x`,
    String(step.walCheckpoints),
    step.storedEqualsAcked ? 'yes' : 'NO',
    step.passed ? 'yes' : 'no'
  ])
  const table = markdownTable(['phones', 'offered/s', 'readings/s', 'kept up', 'ack ms p50 / p99', 'server RSS peak', 'µs/reading service / pg', 'worst ÷ typical phone median ack', 'WAL checkpoints', 'stored = acked', `passes (p99 < ${search.p99LimitMs} ms)`], rows)
  const verdict = search.mostPhonesKeptUp === undefined
    ? 'Real-time step search: no step was kept up.'
    : `Real-time step search: the most phones kept up with ack p99 < ${search.p99LimitMs} ms: ${int(search.mostPhonesKeptUp)}` +
      (search.steps.at(-1)?.passed === false ? ` (the knee: ${int(search.steps.at(-1)!.phones)} were not).` : ' (every step passed).')
  return `${table}\n\n${verdict}`
}
