import { readFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { envSchema } from '../src/config.js'
import type { Pool } from '../src/db/pool.js'
import type { StorageInfo } from '../src/db/startup/storage.js'
import { copyBaseline, insertBaseline, planRows, type BaselineResult, type RowPlan } from './baselines.js'
import { assertDisposable, createBenchUsers, describeDatabase, prepareDatabase, readWalCounters, readWriteSettings, resolveBenchDatabase, truncateReadings, type WalCounters } from './database.js'
import { runExportPhase, type ExportResult } from './export.js'
import { datasetExportTargets, runDatasetExportPhase, type DatasetExportResult } from './dataset-export.js'
import { runPlotPhase, type PlotResult } from './plot.js'
import { createWatcherToken, LiveWatchers, type LiveWatchResult } from './live-watcher.js'
import { runLoad } from './load.js'
import { runStepSearch, type StepSearchResult } from './step-search.js'
import { runReportPhase, type ReportPhaseResult } from './report-phase.js'
import { runPushPhase, type PushPhaseResult } from './push-phase.js'
import { realtimeOffsetMs, type PhoneMode, type PhoneResult, type PhoneUser } from './phone.js'
import { cpuBetween, cpuSnapshot, PostgresCpuTracker, processMemoryMb, sampleMachineLoad, waitForQuiet, startRssSampler, type CpuSnapshot, type CpuUsage } from './proc-stats.js'
import { BATCH_INTERVAL_MS, READINGS_PER_BATCH, type FrameFormat, type TimestampFormat } from './readings.js'
import { REPO_ROOT, startServerProcess, type ServerCode, type ServerProcess } from './server-process.js'
import { phoneSpread, summarizeLatencies, type LatencySummary, type PhoneSpread } from './stats.js'
import { verifySessions, type Verification } from './verify.js'

export interface PhaseSize {
  phones: number
  seconds: number
}

export interface BenchOptions {
  /** Connection string; unset: postgres://postgres@127.0.0.1:5432/motion_ingest_bench. */
  databaseUrl?: string
  /** Try a TimescaleDB container first (testcontainers). */
  loadtest: boolean
  /** Allow emptying `readings` in a database whose name does not contain bench/test/load. */
  allowTruncate: boolean
  modes: PhoneMode[]
  realtime: PhaseSize
  flood: PhaseSize
  /** Sensor Logger phones pushing over HTTP, one message a second (phones 0 skips the push phase). */
  push: PhaseSize
  /** Most unacknowledged batches per phone. */
  window: number
  /** Generator processes the phones are spread over. */
  workers: number
  timestampFormat: TimestampFormat
  /** Phones send batches as JSON text or binary CBOR frames. */
  frames: FrameFormat
  /** Phones log in with POST /auth/login; false: they use tokens issued in the database. */
  login: boolean
  baselines: boolean
  /** Rows of the baselines; unset: the readings acknowledged in the flood (else real-time) phase. */
  baselineRows?: number
  /** The naive INSERT baseline writes at most this many rows (its rate is what counts). */
  naiveMaxRows: number
  /** Readings in the export session; 0 skips the export phase. */
  exportReadings: number
  exportRepeats: number
  /** Time GET /datasets/export of the export session in each layout and format against COPY TO. */
  datasetExport: boolean
  /** Readings of each session whose completeness report is timed (one session per size); empty skips the report phase. */
  reportReadings: number[]
  /** The report and its baseline each run this many times; the best run counts. */
  reportRepeats: number
  /** GET /live streams held open during a second flood phase (0: no such phase): what the live view costs ingest. */
  liveWatchers: number
  /** Phone counts of the real-time step search (empty: no search); each step runs --realtime-seconds. */
  realtimeSteps: number[]
  /** Extra environment for the service (ingest knobs). */
  serverEnv: Record<string, string>
  /** Write a V8 CPU profile of the service for each phase into the results folder. */
  cpuProf: boolean
  /** How the service runs: compiled as `npm start` runs it (npm run bench), or from source with tsx (the tests: no build). */
  serverCode: ServerCode
  resultsDir: string
  /** Stamp used in result file names. */
  stamp: string
  /** Before each phase, wait up to this long for other work on the machine to calm down (0: do not wait). */
  quietWaitSeconds: number
  /** How long phones wait for create/destroy acks and the final drain. */
  timeoutMs: number
  say: (line: string) => void
}

export function defaultBenchOptions (overrides: Partial<BenchOptions> = {}): BenchOptions {
  return {
    databaseUrl: process.env.DATABASE_URL || undefined,
    loadtest: false,
    allowTruncate: false,
    modes: ['realtime', 'flood'],
    realtime: { phones: 1000, seconds: 30 },
    flood: { phones: 100, seconds: 20 },
    push: { phones: 100, seconds: 20 },
    window: 8,
    workers: Math.min(4, Math.max(2, os.availableParallelism())),
    timestampFormat: 'epoch',
    frames: 'json',
    login: true,
    baselines: true,
    naiveMaxRows: 1_500_000,
    exportReadings: 1_000_000,
    exportRepeats: 2,
    datasetExport: true,
    reportReadings: [1_000_000, 180_000],
    reportRepeats: 3,
    liveWatchers: 0,
    realtimeSteps: [],
    serverEnv: {},
    cpuProf: false,
    serverCode: 'source',
    resultsDir: path.join(REPO_ROOT, 'bench', 'results'),
    stamp: new Date().toISOString().replace(/[:.]/g, '-'),
    quietWaitSeconds: 0,
    timeoutMs: 30_000,
    say: line => console.log(line),
    ...overrides
  }
}

export interface ServicePhaseResult {
  mode: PhoneMode
  phones: number
  seconds: number
  /** Phones x 300 readings/s in real time; undefined in flood. */
  offeredReadingsPerSecond?: number
  /** Readings the phones had produced by the end (real time). */
  expectedReadings?: number
  readingsSent: number
  readingsAcked: number
  /** Acknowledged readings over the time from the start to the last ack (in real time, at most the offered rate). */
  readingsPerSecond: number
  keptUp?: boolean
  ackLatencyMs: LatencySummary
  /** Ack latency of the batches sent in each `timelineStepSeconds` slice of the phase. */
  ackLatencyTimeline: Array<{ fromSecond: number } & LatencySummary>
  timelineStepSeconds: number
  /** How evenly the phones were served: each phone's median ack, readings acked per phone. */
  phoneSpread: PhoneSpread
  /** Checkpoints the database started while the phase ran (its commits slow down after each), and the WAL it wrote. */
  checkpoints: WalCounters
  /** Sessions for which the server sent session_destroyed twice. */
  duplicateDestroyed: number
  serverPeakRssMb: number
  /** RSS with every phone connected and its session created, before streaming. */
  serverRssConnectedMb: number
  serverRssAtEndMb: number
  /** Cores busy while the phones stream (from the start to the end of producing; not the destroys and reports after). */
  cpu: CpuUsage
  /** CPU time per reading acknowledged while the phones stream, in microseconds: the cost model behind the rates. */
  cpuMicrosPerReading: { server: number, postgres: number, generator: number }
  generatorEventLoopUtilization: number[]
  retries: number
  windowStalls: number
  loginFallbacks: number
  failedToStart: number
  integrityOk: number
  errors: number
  errorSamples: string[]
  serverLogErrors: number
  serverLogSamples: string[]
  serverExitCode: number | null
  verification: Verification
  serverLog: string
  cpuProfile?: string
}

export interface Target {
  name: string
  goal: string
  value: string
  met: boolean | undefined
}

export interface BenchResult {
  startedAt: string
  finishedAt: string
  machine: { cpus: number, cpuModel: string, memoryGb: number, node: string, busyCoresBeforeStart: number }
  database: { url: string, source: string, storage: StorageInfo, settings: Record<string, string> }
  options: Omit<BenchOptions, 'say' | 'databaseUrl'>
  realtime?: ServicePhaseResult
  flood?: ServicePhaseResult
  /** Sensor Logger phones over HTTP push (POST /ingest/sensor-logger/<ingest key>). */
  push?: PushPhaseResult
  /** The flood again with GET /live streams open (--live-watchers). */
  floodWatched?: ServicePhaseResult & { live: LiveWatchResult }
  /** The real-time step search (--realtime-steps): the most phones kept up with ack p99 < 250 ms. */
  stepSearch?: StepSearchResult
  limit?: BaselineResult & { cpu: CpuUsage, postgresMicrosPerReading: number }
  /** The limit's rows COPYed session by session: what the database takes when rows do not interleave. */
  limitBySession?: BaselineResult & { cpu: CpuUsage, postgresMicrosPerReading: number }
  naive?: BaselineResult & { cpu: CpuUsage, postgresMicrosPerReading: number }
  export?: ExportResult
  /** Time to first plot of the export session (GET /sessions/:id/readings/summary) against reading its rows once. */
  plot?: PlotResult
  /** GET /datasets/export of the export session, each layout and format, against COPY TO of the same rows. */
  datasetExport?: DatasetExportResult
  /** The completeness report of long sessions against reading their rows once. */
  sessionReport?: ReportPhaseResult
  ratios: { floodVsLimit?: number, floodVsNaive?: number, pushVsRealtime?: number }
  targets: Target[]
  /** Every service phase stored exactly what it acknowledged, and nothing went wrong. */
  correct: boolean
  problems: string[]
  /** Caveats that do not make the run wrong (a saturated generator, a skipped phase). */
  warnings: string[]
}

interface Context {
  options: BenchOptions
  url: string
  databaseName: string
  pool: Pool
  users: Array<PhoneUser & { id: number }>
}

/**
 * The whole benchmark: service phases (real time, flood) against the service
 * in its own process, then the binary COPY and naive INSERT baselines on the
 * same table, then the CSV export against COPY TO, then the completeness
 * report of long sessions against reading their rows once. Returns everything measured.
 */
export async function runBench (partial: Partial<BenchOptions> = {}): Promise<BenchResult> {
  const options = defaultBenchOptions(partial)
  const say = options.say
  const startedAt = new Date().toISOString()
  const database = await resolveBenchDatabase({ databaseUrl: options.databaseUrl, loadtest: options.loadtest, say })
  let pool: Pool | undefined
  try {
    assertDisposable(database.url, options.allowTruncate || database.source.includes('container'))
    const prepared = await prepareDatabase(database.url)
    pool = prepared.pool
    say(`database: ${describeDatabase(database.url)} (${database.source}; readings in a ${prepared.storage.readingsHypertable ? 'TimescaleDB hypertable' : 'plain PostgreSQL table'}, PostgreSQL ${prepared.storage.postgresVersion})`)

    const busyCoresBeforeStart = await sampleMachineLoad()
    if (busyCoresBeforeStart > 0.25) say(`warning: the machine is already ${busyCoresBeforeStart.toFixed(2)} cores busy before the bench starts; figures will be lower than on a quiet machine`)
    const phoneCount = Math.max(0, ...options.modes.map(mode => options[mode].phones), ...options.realtimeSteps)
    say(`creating ${phoneCount + 1} bench users with tokens...`)
    const users = await createBenchUsers(pool, phoneCount + 1)
    const ctx: Context = { options, url: database.url, databaseName: decodeURIComponent(new URL(database.url).pathname.slice(1)), pool, users }

    const result: BenchResult = {
      startedAt,
      finishedAt: '',
      machine: { cpus: os.availableParallelism(), cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGb: Math.round(os.totalmem() / 2 ** 30), node: process.version, busyCoresBeforeStart },
      database: { url: describeDatabase(database.url), source: database.source, storage: prepared.storage, settings: await readWriteSettings(pool) },
      options: { ...options, say: undefined, databaseUrl: undefined } as unknown as BenchResult['options'],
      ratios: {},
      targets: [],
      correct: true,
      problems: [],
      warnings: []
    }

    for (const mode of options.modes) {
      result[mode] = await servicePhase(ctx, mode)
    }
    if (options.push.phones > 0) {
      // Users of their own: a push to a user with a live WebSocket session would be refused.
      const pushUsers = await createBenchUsers(pool, options.push.phones)
      await truncateReadings(pool)
      await settle(ctx, 'push')
      result.push = await runPushPhase({
        pool,
        startService: () => startService(ctx, 'push'),
        userIds: pushUsers.map(user => user.id),
        seconds: options.push.seconds,
        scanLog: scanServerLog,
        say
      })
    }
    if (options.modes.includes('flood') && options.liveWatchers > 0) {
      say(`flood again with ${options.liveWatchers} GET /live stream(s) open, as admins on the live page...`)
      const token = await createWatcherToken(pool)
      let watchers: LiveWatchers | undefined
      const phase = await servicePhase(ctx, 'flood', {
        started: async baseUrl => { watchers = await LiveWatchers.open(baseUrl, token, options.liveWatchers) },
        stopping: () => watchers?.close()
      })
      const live = watchers?.close() ?? { streams: 0, notices: 0, sessions: 0 }
      result.floodWatched = { ...phase, live }
      say(`  ${live.notices.toLocaleString('en')} notices about ${live.sessions} sessions received` +
        (result.flood ? `; ${((phase.readingsPerSecond / result.flood.readingsPerSecond) * 100).toFixed(0)}% of the flood without watchers` : ''))
    }
    if (options.realtimeSteps.length > 0) {
      const seconds = options.realtime.seconds
      result.stepSearch = await runStepSearch(options.realtimeSteps, phones => servicePhase({ ...ctx, options: { ...options, realtime: { phones, seconds } } }, 'realtime'), say)
      for (const step of result.stepSearch.steps) {
        if (!step.storedEqualsAcked) result.problems.push(`step search, ${step.phones} phones: stored readings do not match acks`)
      }
    }
    const reference = result.flood ?? result.realtime
    if (options.baselines) {
      const batches = options.baselineRows !== undefined
        ? Math.ceil(options.baselineRows / READINGS_PER_BATCH)
        : Math.max(1, Math.round((reference?.readingsAcked ?? 1_000_000) / READINGS_PER_BATCH))
      const plan: RowPlan = { sessions: Math.max(1, reference?.phones ?? 100), batches, firstSessionId: 1e12, startMs: Date.now() - 3600_000 }
      await truncateReadings(pool)
      await settle(ctx, 'limit')
      say(`limit: ${planRows(plan).toLocaleString('en')} readings by binary COPY through one client...`)
      result.limit = await measured(ctx, () => copyBaseline(ctx.pool, plan))
      say(`  ${rate(result.limit.readingsPerSecond)}`)
      await truncateReadings(pool)
      await settle(ctx, 'limit by session')
      say('limit by session: the same rows, each session\'s together...')
      result.limitBySession = await measured(ctx, () => copyBaseline(ctx.pool, plan, 'session'))
      say(`  ${rate(result.limitBySession.readingsPerSecond)}`)
      await truncateReadings(pool)
      await settle(ctx, 'naive')
      const naivePlan = { ...plan, batches: Math.min(plan.batches, Math.max(1, Math.floor(options.naiveMaxRows / READINGS_PER_BATCH))) }
      say(`naive: ${planRows(naivePlan).toLocaleString('en')} readings as 375-row INSERTs through one client...`)
      result.naive = await measured(ctx, () => insertBaseline(ctx.pool, naivePlan))
      say(`  ${rate(result.naive.readingsPerSecond)}`)
      await truncateReadings(pool)
    }
    if (options.exportReadings > 0) [result.export, result.plot] = await exportPhase(ctx)
    if (options.datasetExport && result.export?.sessionId !== undefined) {
      options.say('dataset export: the same session through GET /datasets/export in each layout and format, against COPY TO...')
      result.datasetExport = await runDatasetExportPhase({
        pool: ctx.pool,
        startService: () => startService(ctx, 'dataset-export'),
        sessionId: result.export.sessionId,
        readings: result.export.readings,
        repeats: options.exportRepeats,
        say: options.say
      })
    }
    if (options.reportReadings.length > 0) result.sessionReport = await reportPhase(ctx, prepared.storage.readingsHypertable)

    if (result.flood && result.limit) result.ratios.floodVsLimit = result.flood.readingsPerSecond / result.limit.readingsPerSecond
    if (result.flood && result.naive) result.ratios.floodVsNaive = result.flood.readingsPerSecond / result.naive.readingsPerSecond
    for (const phase of [result.realtime, result.flood, result.floodWatched]) {
      if (!phase) continue
      const label = phase === result.floodWatched ? 'flood with live watchers:' : `${phase.mode}:`
      if (!phase.verification.ok) result.problems.push(`${label} stored readings do not match acks: ${phase.verification.problems.join('; ')}`)
      if (phase.errors > 0) result.problems.push(`${label} ${phase.errors} phone errors, e.g. ${phase.errorSamples.slice(0, 3).join(' | ')}`)
      if (phase.failedToStart > 0) result.problems.push(`${label} ${phase.failedToStart} phones could not start`)
      if (phase.serverLogErrors > 0) result.problems.push(`${label} ${phase.serverLogErrors} error lines in the service log, e.g. ${phase.serverLogSamples[0] ?? ''}`)
      if (phase.readingsAcked === 0) result.problems.push(`${label} no reading was acknowledged`)
      if (phase.checkpoints.requested > 0) {
        result.warnings.push(`${label} the database started ${phase.checkpoints.requested} checkpoint(s) because WAL reached max_wal_size ` +
          `(${result.database.settings.max_wal_size}); commits slow down after each, which shows in the ack tail (docs/operations.md, database settings)`)
      }
      if (phase.duplicateDestroyed > 0) {
        result.warnings.push(`${label} the server sent session_destroyed twice for ${phase.duplicateDestroyed} sessions after destroy_session ` +
          '(the reaper saw the session end before the connection forgot it)')
      }
    }
    if (result.push && result.realtime) result.ratios.pushVsRealtime = result.push.readingsPerSecond / result.realtime.readingsPerSecond
    const push = result.push
    if (push) {
      if (!push.verification.ok) result.problems.push(`push: stored readings do not match acks: ${push.verification.problems.join('; ')}`)
      if (push.errors > 0) result.problems.push(`push: ${push.errors} phone errors, e.g. ${push.errorSamples.slice(0, 3).join(' | ')}`)
      if (push.serverLogErrors > 0) result.problems.push(`push: ${push.serverLogErrors} error lines in the service log, e.g. ${push.serverLogSamples[0] ?? ''}`)
      if (push.readingsAcked === 0) result.problems.push('push: no reading was acknowledged')
    }
    if (result.export?.status === 'failed') result.problems.push(`export: ${result.export.message}`)
    if (result.export?.status === 'skipped') result.warnings.push(`export: ${result.export.message}`)
    if (result.datasetExport?.status === 'failed') result.problems.push(`dataset export: ${result.datasetExport.message}`)
    if (result.plot?.status === 'failed') result.problems.push(`plot: ${result.plot.message}`)
    if (result.floodWatched && result.floodWatched.live.notices === 0) result.problems.push('flood with live watchers: no notice reached the watchers')
    if (result.sessionReport?.status === 'failed') result.problems.push(`report: ${result.sessionReport.message}`)
    for (const size of result.sessionReport?.sizes ?? []) {
      if (!size.verified) result.problems.push(`report: the report of the ${size.readings}-reading session did not find exactly the built-in defects: ${size.problems.slice(0, 5).join('; ')}`)
    }
    result.correct = result.problems.length === 0
    result.targets = evaluateTargets(result)
    result.finishedAt = new Date().toISOString()
    return result
  } finally {
    await pool?.end()
    await database.stop()
  }
}

/** Runs a baseline with PostgreSQL's CPU measured around it. */
async function measured (ctx: Context, run: () => Promise<BaselineResult>): Promise<BaselineResult & { cpu: CpuUsage, postgresMicrosPerReading: number }> {
  const tracker = new PostgresCpuTracker(ctx.databaseName)
  const from = cpuSnapshot(undefined, [], tracker)
  const baseline = await run().finally(() => tracker.stop())
  const to = cpuSnapshot(undefined, [], tracker)
  const cpu = cpuBetween(from, to)
  return { ...baseline, cpu, postgresMicrosPerReading: cpu.postgres * ((to.at - from.at) / 1000) / Math.max(1, baseline.rows) * 1e6 }
}

/** Waits for a quiet machine when asked to, and returns the background load the phase starts with. */
async function settle (ctx: Context, phase: string): Promise<number> {
  if (ctx.options.quietWaitSeconds <= 0) return 0
  const load = await waitForQuiet(ctx.options.quietWaitSeconds * 1000)
  if (load > 0.3) ctx.options.say(`  ${phase}: the machine is still ${load.toFixed(2)} cores busy with other work; starting anyway`)
  return load
}

const rate = (perSecond: number) => `${Math.round(perSecond).toLocaleString('en')} readings/s`

async function startService (ctx: Context, label: string): Promise<ServerProcess> {
  const { options } = ctx
  return await startServerProcess({
    databaseUrl: ctx.url,
    env: options.serverEnv,
    logFile: path.join(options.resultsDir, `${options.stamp}-${label}-server.log`),
    cpuProfDir: options.cpuProf ? path.join(options.resultsDir, `${options.stamp}-${label}-cpuprofile`) : undefined,
    code: options.serverCode
  })
}

/** Phones a real-time phase produces: batch b of phone i is due at offset(i) + b * 1.25 s, before the end. */
export function expectedRealtimeBatches (phones: number, seconds: number): number {
  let batches = 0
  for (let i = 0; i < phones; i++) batches += Math.max(0, Math.ceil((seconds * 1000 - realtimeOffsetMs(i)) / BATCH_INTERVAL_MS))
  return batches
}

/** Hooks around the phones of a service phase (the live watchers). */
interface PhaseHooks {
  started?: (baseUrl: string) => Promise<void>
  stopping?: () => void
}

async function servicePhase (ctx: Context, mode: PhoneMode, hooks: PhaseHooks = {}): Promise<ServicePhaseResult> {
  const { options } = ctx
  const { phones, seconds } = options[mode]
  await truncateReadings(ctx.pool)
  await settle(ctx, mode)
  ctx.options.say(`${mode}: starting the service, then ${phones} phones for ${seconds} s (window ${options.window}, ${options.workers} generator processes)...`)
  const server = await startService(ctx, mode)
  const rss = startRssSampler(server.pid)
  const postgresCpu = new PostgresCpuTracker(ctx.databaseName)
  let cpuStart: CpuSnapshot | undefined
  let cpuEnd: CpuSnapshot | undefined
  // CPU is compared with readings over the streaming itself: what follows (destroy_session, each
  // session's completeness report) costs PostgreSQL as much as a third of a real-time phase's CPU.
  let streamEnd: { cpu: CpuSnapshot, wallMs: number } | undefined
  let streamEndTimer: NodeJS.Timeout | undefined
  let run
  let serverExitCode: number | null = null
  let rssAtEnd = 0
  let rssConnected = 0
  const checkpointsBefore = await readWalCounters(ctx.pool)
  let checkpointsAfter = checkpointsBefore
  try {
    await hooks.started?.(server.baseUrl)
    run = await runLoad({
      mode,
      phones,
      seconds,
      window: options.window,
      workers: options.workers,
      timestampFormat: options.timestampFormat,
      frames: options.frames,
      login: options.login,
      baseUrl: server.baseUrl,
      wsUrl: server.wsUrl,
      users: ctx.users,
      timeoutMs: options.timeoutMs
    }, {
      beforeStart: pids => {
        rssConnected = processMemoryMb(server.pid)?.rss ?? 0
        cpuStart = cpuSnapshot(server.pid, pids, postgresCpu)
        // runLoad starts streaming 300 ms after this hook and stops producing `seconds` later.
        streamEndTimer = setTimeout(() => { streamEnd = { cpu: cpuSnapshot(server.pid, pids, postgresCpu), wallMs: Date.now() } }, 300 + seconds * 1000)
      },
      afterDone: pids => { cpuEnd = cpuSnapshot(server.pid, pids, postgresCpu) }
    })
    rssAtEnd = processMemoryMb(server.pid)?.rss ?? 0
    checkpointsAfter = await readWalCounters(ctx.pool)
  } finally {
    clearTimeout(streamEndTimer)
    hooks.stopping?.()
    postgresCpu.stop()
    serverExitCode = await server.stop()
  }
  const memory = rss.stop()
  const results = run.results
  const latencies = results.flatMap(phone => phone.latenciesMs)
  const readingsAcked = sum(results, phone => phone.readingsAcked)
  const lastAck = Math.max(run.startAt, ...results.map(phone => phone.lastAckAt ?? 0))
  const readingsPerSecond = readingsAcked / Math.max(0.001, (lastAck - run.startAt) / 1000)
  const acked = new Map<number, number>()
  for (const phone of results) if (phone.sessionId !== undefined) acked.set(phone.sessionId, phone.readingsAcked)
  const verification = await verifySessions(ctx.pool, acked)
  const serverLog = await scanServerLog(server.logFile)
  const ackLatencyMs = summarizeLatencies(latencies)
  const windowEnd = streamEnd?.cpu ?? cpuEnd
  const cpu = cpuStart && windowEnd ? cpuBetween(cpuStart, windowEnd) : { server: 0, generator: 0, postgres: 0, machine: 0, other: 0 }
  const cpuSeconds = cpuStart && windowEnd ? (windowEnd.at - cpuStart.at) / 1000 : 0
  const readingsInWindow = streamEnd ? READINGS_PER_BATCH * ackedBy(results, streamEnd.wallMs) : readingsAcked
  const perReading = (cores: number) => readingsInWindow > 0 ? cores * cpuSeconds / readingsInWindow * 1e6 : 0
  const timelineStepSeconds = seconds <= 10 ? 1 : 5
  const ackLatencyTimeline = latencyTimeline(results, run.startAt, seconds, timelineStepSeconds)
  const phase: ServicePhaseResult = {
    mode,
    phones,
    seconds,
    readingsSent: sum(results, phone => phone.readingsSent),
    readingsAcked,
    readingsPerSecond,
    ackLatencyMs,
    ackLatencyTimeline,
    timelineStepSeconds,
    phoneSpread: phoneSpread(results),
    checkpoints: {
      requested: checkpointsAfter.requested - checkpointsBefore.requested,
      timed: checkpointsAfter.timed - checkpointsBefore.timed,
      walBytes: checkpointsAfter.walBytes - checkpointsBefore.walBytes
    },
    duplicateDestroyed: sum(results, phone => phone.duplicateDestroyed),
    serverPeakRssMb: memory.peakMb,
    serverRssConnectedMb: rssConnected,
    serverRssAtEndMb: rssAtEnd,
    cpu,
    cpuMicrosPerReading: { server: perReading(cpu.server), postgres: perReading(cpu.postgres), generator: perReading(cpu.generator) },
    generatorEventLoopUtilization: run.generatorEventLoopUtilization,
    retries: sum(results, phone => phone.retries),
    windowStalls: sum(results, phone => phone.windowStalls),
    loginFallbacks: results.filter(phone => phone.loginFallback).length,
    failedToStart: run.failedToStart,
    integrityOk: results.filter(phone => phone.integrity === 'ok').length,
    errors: sum(results, phone => phone.errorCount),
    errorSamples: results.flatMap(phone => phone.errors.map(error => `phone ${phone.index}: ${error}`)).slice(0, 10),
    serverLogErrors: serverLog.errors,
    serverLogSamples: serverLog.samples,
    serverExitCode,
    verification,
    serverLog: server.logFile,
    cpuProfile: options.cpuProf ? path.join(options.resultsDir, `${options.stamp}-${mode}-cpuprofile`) : undefined
  }
  if (mode === 'realtime') {
    phase.offeredReadingsPerSecond = phones * READINGS_PER_BATCH * (1000 / BATCH_INTERVAL_MS)
    phase.expectedReadings = expectedRealtimeBatches(phones, seconds) * READINGS_PER_BATCH
    // Kept up: every batch produced on schedule was acknowledged, and acks did not fall a batch interval behind.
    phase.keptUp = readingsAcked === phase.expectedReadings && ackLatencyMs.p99 < BATCH_INTERVAL_MS && phase.errors === 0
  }
  options.say(`  ${rate(phase.readingsPerSecond)}, ack p50/p99/max ${ms(ackLatencyMs.p50)}/${ms(ackLatencyMs.p99)}/${ms(ackLatencyMs.max)} ms, ` +
    `server RSS peak ${Math.round(memory.peakMb)} MB, ${phase.errors} errors, stored = acked: ${verification.ok}`)
  return phase
}

const ms = (value: number) => value.toFixed(1)

export function latencyTimeline (results: PhoneResult[], startAt: number, seconds: number, step: number): ServicePhaseResult['ackLatencyTimeline'] {
  const slices: number[][] = Array.from({ length: Math.max(1, Math.ceil(seconds / step)) }, () => [])
  for (const phone of results) {
    phone.sentAtMs.forEach((sentAt, i) => {
      const slice = Math.min(slices.length - 1, Math.max(0, Math.floor((sentAt - startAt) / 1000 / step)))
      slices[slice]!.push(phone.latenciesMs[i]!)
    })
  }
  return slices.map((latencies, i) => ({ fromSecond: i * step, ...summarizeLatencies(latencies) }))
}

/** Batches acknowledged by a wall-clock time (epoch ms): each ack came its latency after the batch was first sent. */
function ackedBy (results: PhoneResult[], wallMs: number): number {
  let batches = 0
  for (const phone of results) phone.sentAtMs.forEach((sentAt, i) => { if (sentAt + phone.latenciesMs[i]! <= wallMs) batches++ })
  return batches
}

function sum (results: PhoneResult[], pick: (phone: PhoneResult) => number): number {
  let total = 0
  for (const phone of results) total += pick(phone)
  return total
}

/** Counts pino lines at level error or worse (>= 50) in the service's log. */
export async function scanServerLog (file: string): Promise<{ errors: number, samples: string[] }> {
  const text = await readFile(file, 'utf8').catch(() => '')
  let errors = 0
  const samples: string[] = []
  for (const line of text.split('\n')) {
    if (!line) continue
    let level = 50
    try {
      level = (JSON.parse(line) as { level?: number }).level ?? 50
    } catch {
      // not pino JSON: a crash trace or similar counts as an error
    }
    if (level < 50) continue
    errors++
    if (samples.length < 5) samples.push(line.slice(0, 300))
  }
  return { errors, samples }
}

async function exportPhase (ctx: Context): Promise<[ExportResult, PlotResult | undefined]> {
  const { options } = ctx
  const owner = ctx.users[ctx.users.length - 1]!
  await truncateReadings(ctx.pool)
  options.say(`export: a ${options.exportReadings.toLocaleString('en')}-reading session as readings.csv against COPY TO...`)
  await settle(ctx, 'export')
  const server = await startService(ctx, 'export')
  try {
    const result = await runExportPhase({
      pool: ctx.pool,
      baseUrl: server.baseUrl,
      userId: owner.id,
      token: owner.token,
      readings: options.exportReadings,
      repeats: options.exportRepeats
    })
    options.say(result.status === 'measured'
      ? `  service ${rate(result.service!.readingsPerSecond)}, COPY TO ${rate(result.direct!.readingsPerSecond)}, ratio ${(result.ratio! * 100).toFixed(0)}%`
      : `  ${result.status}: ${result.message}`)
    if (result.sessionId === undefined) return [result, undefined]
    // The same session on the same service: the web page's first plot of it against reading its rows once.
    options.say('plot: the readings summary of the same session, as the web page asks for it...')
    const plot = await runPlotPhase({
      baseUrl: server.baseUrl,
      token: owner.token,
      sessionId: result.sessionId,
      readings: result.readings,
      repeats: options.exportRepeats,
      rowsOnce: result.rawCopy
    })
    options.say(plot.status === 'measured'
      ? `  first plot ${Math.round(plot.first!.milliseconds)} ms (best ${Math.round(plot.best!.milliseconds)} ms, ${Math.round(plot.first!.bytes / 1000)} kB)` +
        (plot.rowsOnceMs !== undefined ? `, reading the rows once ${Math.round(plot.rowsOnceMs)} ms` : '')
      : `  ${plot.status}: ${plot.message}`)
    return [result, plot]
  } finally {
    await server.stop()
  }
}

async function reportPhase (ctx: Context, timescaledb: boolean): Promise<ReportPhaseResult> {
  const { options } = ctx
  await settle(ctx, 'report')
  return await runReportPhase({
    pool: ctx.pool,
    userId: ctx.users[ctx.users.length - 1]!.id,
    sizes: options.reportReadings,
    repeats: options.reportRepeats,
    timescaledb,
    // The bound the service puts on one report (statement_timeout): slower, and the report fails there.
    serviceTimeoutMs: envSchema.shape.SESSION_REPORT_TIMEOUT_MS.parse(options.serverEnv.SESSION_REPORT_TIMEOUT_MS),
    truncate: () => truncateReadings(ctx.pool),
    say: options.say
  })
}

function evaluateTargets (result: BenchResult): Target[] {
  const targets: Target[] = []
  const pct = (value: number) => `${(value * 100).toFixed(0)}%`
  const { flood, realtime } = result
  // Binary frames leave the database as the limit; JSON text costs the service CPU the database shares.
  const binary = result.options.frames === 'binary'
  const floodGoal = binary ? 0.85 : 0.65
  targets.push({
    name: `flood vs limit (${binary ? 'binary' : 'JSON'} frames)`,
    goal: `>= ${pct(floodGoal)} of binary COPY`,
    value: result.ratios.floodVsLimit === undefined ? 'not measured' : pct(result.ratios.floodVsLimit),
    met: result.ratios.floodVsLimit === undefined ? undefined : result.ratios.floodVsLimit >= floodGoal
  })
  const pgRatio = realtime && result.limit ? realtime.cpuMicrosPerReading.postgres / result.limit.postgresMicrosPerReading : undefined
  targets.push({
    name: 'PostgreSQL CPU, real time',
    goal: '<= 1.5x binary COPY\'s per reading',
    value: pgRatio === undefined ? 'not measured' : `${pgRatio.toFixed(2)}x (${realtime!.cpuMicrosPerReading.postgres.toFixed(2)} against ${result.limit!.postgresMicrosPerReading.toFixed(2)} µs)`,
    met: pgRatio === undefined ? undefined : pgRatio <= 1.5
  })
  const steps = result.stepSearch
  const stepGoal = binary ? 1500 : 1000
  targets.push({
    name: 'real-time phones kept up',
    goal: `>= ${stepGoal.toLocaleString('en')} with ack p99 < 250 ms (step search)`,
    value: steps ? (steps.mostPhonesKeptUp?.toLocaleString('en') ?? 'none') : 'not measured',
    met: steps ? (steps.mostPhonesKeptUp ?? 0) >= stepGoal : undefined
  })
  targets.push({
    name: 'flood vs naive',
    goal: '>= 3x 375-row INSERTs',
    value: result.ratios.floodVsNaive === undefined ? 'not measured' : `${result.ratios.floodVsNaive.toFixed(2)}x`,
    met: result.ratios.floodVsNaive === undefined ? undefined : result.ratios.floodVsNaive >= 3
  })
  const fullSize = realtime !== undefined && realtime.phones >= 1000
  targets.push({
    name: `real time, ${realtime?.phones ?? 1000} phones`,
    goal: 'keeps up, p99 ack < 50 ms (at 1,000 phones)',
    value: realtime ? `${realtime.keptUp ? 'kept up' : 'fell behind'}, p99 ${ms(realtime.ackLatencyMs.p99)} ms` : 'not measured',
    met: realtime && fullSize ? Boolean(realtime.keptUp) && realtime.ackLatencyMs.p99 < 50 : undefined
  })
  targets.push({
    name: 'server RSS, streaming',
    goal: '< 300 MB with 1,000 real-time phones',
    value: realtime
      ? `${Math.round(realtime.serverPeakRssMb)} MB peak streaming, ${Math.round(realtime.serverRssConnectedMb)} MB connected, ${realtime.phones} phones`
      : 'not measured',
    met: realtime && fullSize ? realtime.serverPeakRssMb < 300 : undefined
  })
  // Every real-time phase of the run, the step search's included: connected RSS at the most phones, peak RSS at any load.
  const phases = [
    ...(realtime ? [{ phones: realtime.phones, connected: realtime.serverRssConnectedMb, peak: realtime.serverPeakRssMb }] : []),
    ...(steps?.steps ?? []).map(step => ({ phones: step.phones, connected: step.serverRssConnectedMb, peak: step.serverPeakRssMb }))
  ]
  const most = phases.reduce<typeof phases[number] | undefined>((best, phase) => !best || phase.phones > best.phones ? phase : best, undefined)
  targets.push({
    name: 'server RSS, phones connected',
    goal: '< 300 MB with 2,000 phones connected',
    value: most ? `${Math.round(most.connected)} MB with ${most.phones.toLocaleString('en')} phones connected` : 'not measured',
    met: most && most.phones >= 2000 ? most.connected < 300 : undefined
  })
  const heaviest = phases.reduce<typeof phases[number] | undefined>((worst, phase) => !worst || phase.peak > worst.peak ? phase : worst, undefined)
  targets.push({
    name: 'server RSS, any load',
    goal: '< 400 MB in every real-time phase, overload included',
    value: heaviest ? `${Math.round(heaviest.peak)} MB peak (${heaviest.phones.toLocaleString('en')} phones), the most of ${phases.length} phase(s)` : 'not measured',
    met: heaviest ? heaviest.peak < 400 : undefined
  })
  const exp = result.export
  targets.push({
    name: 'CSV export',
    goal: '>= 80% of COPY TO',
    value: exp?.ratio !== undefined ? pct(exp.ratio) : exp ? exp.status : 'not measured',
    met: exp?.ratio !== undefined ? exp.ratio >= 0.8 : undefined
  })
  const plot = result.plot
  targets.push({
    name: `first plot, ${plot ? plot.readings.toLocaleString('en') : '1M'} readings`,
    goal: '< 1 s (GET /sessions/:id/readings/summary)',
    value: plot?.first ? `${Math.round(plot.first.milliseconds)} ms${plot.ratio !== undefined ? `; reading the rows once takes ${plot.ratio.toFixed(1)}x that` : ''}` : plot ? plot.status : 'not measured',
    met: plot?.first ? plot.first.milliseconds < 1000 : undefined
  })
  targets.push(...datasetExportTargets(result.datasetExport))
  const report = result.sessionReport
  for (const size of report?.sizes ?? []) {
    targets.push({
      name: `session report, ${size.readings.toLocaleString('en')} readings`,
      goal: `< SESSION_REPORT_TIMEOUT_MS (${report!.serviceTimeoutMs / 1000} s)`,
      value: `${size.report.seconds.toFixed(2)} s, ${size.ratio.toFixed(1)}x one read of its rows`,
      met: size.report.seconds * 1000 < report!.serviceTimeoutMs
    })
  }
  if (flood) {
    // Keeps the flood figure honest: if the generator saturated its own loop, the service was not the limit.
    const busiest = Math.max(0, ...flood.generatorEventLoopUtilization)
    if (busiest > 0.9) result.warnings.push(`flood: a generator process was ${pct(busiest)} busy; the figure may be generator-bound`)
  }
  return targets
}
