/**
 * `npm run bench` / `npm run loadtest`: parses the command line, runs the
 * benchmark, prints the table and writes the JSON beside it.
 */
import { parseArgs } from 'node:util'
import { defaultBenchOptions, runBench, type BenchOptions } from './bench.js'
import { INSTANCES_HELP, instancesMain, wantsInstances } from './instances-cli.js'
import type { PhoneMode } from './phone.js'
import { formatReport, writeResultJson } from './report.js'

const HELP = `Usage: npm run bench -- [options]      (npm run loadtest = --loadtest)

  --mode realtime|flood|all|baselines   service phases to run (default all; baselines: none)
  --phones N --seconds S      size of the selected phase(s)
  --realtime-phones N --realtime-seconds S   (default 1000 x 30)
  --flood-phones N --flood-seconds S         (default 100 x 20)
  --push-phones N --push-seconds S           Sensor Logger HTTP-push phones, a message a second (default 100 x 20)
  --skip-push                 no HTTP-push phase
  --window N                  unacknowledged batches per phone (default 8)
  --workers N                 generator processes (default 2-4)
  --timestamps epoch|iso      reading timestamp format on the wire (default epoch)
  --frames json|binary        batches as JSON text or binary CBOR frames (default json)
  --preissued-tokens          phones skip POST /auth/login
  --skip-baselines            no binary COPY / INSERT baselines
  --baseline-rows N           baseline size (default: readings acked in flood)
  --naive-max-rows N          cap of the INSERT baseline (default 1500000)
  --export-readings N         size of the CSV export session (default 1000000; 0 skips)
  --skip-dataset-export       no GET /datasets/export timing of the export session
  --report-readings N,M,...   sizes of the sessions whose completeness report is timed
                              (default 1000000,180000; 0 skips)
  --report-repeats N          runs of each report and its baseline, best counts (default 3)
  --live-watchers N           run the flood again with N GET /live streams open (admins on the live page)
  --realtime-steps N,M,...    real-time step search: phases of N, M, ... phones (--realtime-seconds each) until
                              one is not kept up with ack p99 < 250 ms, e.g. 250,500,1000,1500,2000
  --server-env KEY=VALUE      extra service environment (repeatable), e.g. INGEST_WRITERS=3
  --server-code compiled|source   run the service compiled, as npm start does (default; tsc builds dist/ first),
                              or from source with tsx (no build; about 40 MB more RSS)
  --cpu-prof                  write V8 CPU profiles of the service to bench/results
  --loadtest                  use a TimescaleDB container (testcontainers) when a runtime exists
  --allow-truncate            allow a database whose name lacks bench/test/load
  --timeout-ms N              drain/create/destroy timeout per phone (default 30000)
  --quiet-wait S              before each phase wait up to S s for the machine to be idle (shared boxes)
${INSTANCES_HELP}

DATABASE_URL selects the database (default postgres://postgres@127.0.0.1:5432/motion_ingest_bench).`

function positive (name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const number = Number(value)
  if (!Number.isFinite(number) || number < 0) throw new Error(`--${name} must be a non-negative number, got ${value}`)
  return number
}

export function parseCommandLine (argv: string[]): Partial<BenchOptions> | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      mode: { type: 'string' },
      phones: { type: 'string' },
      seconds: { type: 'string' },
      'realtime-phones': { type: 'string' },
      'realtime-seconds': { type: 'string' },
      'flood-phones': { type: 'string' },
      'flood-seconds': { type: 'string' },
      'push-phones': { type: 'string' },
      'push-seconds': { type: 'string' },
      'skip-push': { type: 'boolean' },
      window: { type: 'string' },
      workers: { type: 'string' },
      timestamps: { type: 'string' },
      frames: { type: 'string' },
      'realtime-steps': { type: 'string' },
      'preissued-tokens': { type: 'boolean' },
      'skip-baselines': { type: 'boolean' },
      'baseline-rows': { type: 'string' },
      'naive-max-rows': { type: 'string' },
      'export-readings': { type: 'string' },
      'export-repeats': { type: 'string' },
      'skip-dataset-export': { type: 'boolean' },
      'report-readings': { type: 'string' },
      'report-repeats': { type: 'string' },
      'live-watchers': { type: 'string' },
      'server-env': { type: 'string', multiple: true },
      'server-code': { type: 'string' },
      'cpu-prof': { type: 'boolean' },
      loadtest: { type: 'boolean' },
      'allow-truncate': { type: 'boolean' },
      'timeout-ms': { type: 'string' },
      'quiet-wait': { type: 'string' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.help) return 'help'
  const defaults = defaultBenchOptions()
  const mode = values.mode ?? 'all'
  if (!['realtime', 'flood', 'all', 'baselines'].includes(mode)) throw new Error(`--mode must be realtime, flood, all or baselines, got ${mode}`)
  const modes: PhoneMode[] = mode === 'all' ? ['realtime', 'flood'] : mode === 'baselines' ? [] : [mode as PhoneMode]
  const size = (which: PhoneMode) => {
    const selected = modes.includes(which)
    return {
      phones: positive(`${which}-phones`, values[`${which}-phones`]) ?? (selected ? positive('phones', values.phones) : undefined) ?? defaults[which].phones,
      seconds: positive(`${which}-seconds`, values[`${which}-seconds`]) ?? (selected ? positive('seconds', values.seconds) : undefined) ?? defaults[which].seconds
    }
  }
  const timestamps = values.timestamps ?? 'epoch'
  if (timestamps !== 'epoch' && timestamps !== 'iso') throw new Error(`--timestamps must be epoch or iso, got ${timestamps}`)
  const frames = values.frames ?? 'json'
  if (frames !== 'json' && frames !== 'binary') throw new Error(`--frames must be json or binary, got ${frames}`)
  const serverCode = values['server-code'] ?? 'compiled'
  if (serverCode !== 'compiled' && serverCode !== 'source') throw new Error(`--server-code must be compiled or source, got ${serverCode}`)
  const serverEnv: Record<string, string> = {}
  for (const pair of values['server-env'] ?? []) {
    const at = pair.indexOf('=')
    if (at < 1) throw new Error(`--server-env takes KEY=VALUE, got ${pair}`)
    serverEnv[pair.slice(0, at)] = pair.slice(at + 1)
  }
  const options: Partial<BenchOptions> = {
    modes,
    realtime: size('realtime'),
    flood: size('flood'),
    push: {
      phones: values['skip-push'] ? 0 : positive('push-phones', values['push-phones']) ?? defaults.push.phones,
      seconds: positive('push-seconds', values['push-seconds']) ?? defaults.push.seconds
    },
    timestampFormat: timestamps,
    frames,
    realtimeSteps: (values['realtime-steps'] ?? '').split(',').filter(item => item.trim() !== '')
      .map(item => positive('realtime-steps', item.trim())!).filter(phones => phones > 0),
    login: !values['preissued-tokens'],
    baselines: !values['skip-baselines'],
    serverEnv,
    cpuProf: Boolean(values['cpu-prof']),
    loadtest: Boolean(values.loadtest),
    allowTruncate: Boolean(values['allow-truncate']),
    datasetExport: !values['skip-dataset-export'],
    serverCode
  }
  const numbers: Array<[keyof BenchOptions, string]> = [
    ['window', 'window'], ['workers', 'workers'], ['baselineRows', 'baseline-rows'], ['naiveMaxRows', 'naive-max-rows'],
    ['exportReadings', 'export-readings'], ['exportRepeats', 'export-repeats'], ['reportRepeats', 'report-repeats'], ['liveWatchers', 'live-watchers'],
    ['timeoutMs', 'timeout-ms'], ['quietWaitSeconds', 'quiet-wait']
  ]
  for (const [key, flag] of numbers) {
    const value = positive(flag, values[flag as keyof typeof values] as string | undefined)
    if (value !== undefined) (options as Record<string, unknown>)[key] = value
  }
  if (values['report-readings'] !== undefined) {
    // A list of sizes; 0 (or an empty list) skips the phase.
    options.reportReadings = values['report-readings'].split(',').filter(item => item.trim() !== '')
      .map(item => positive('report-readings', item.trim())!).filter(readings => readings > 0)
  }
  return options
}

async function main (): Promise<number> {
  if (wantsInstances(process.argv.slice(2))) return await instancesMain(process.argv.slice(2), parseCommandLine, HELP)
  let options
  try {
    options = parseCommandLine(process.argv.slice(2))
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${HELP}`)
    return 2
  }
  if (options === 'help') {
    console.log(HELP)
    return 0
  }
  const full = defaultBenchOptions(options)
  const result = await runBench(full)
  const report = formatReport(result)
  console.log(`\n${report}\n`)
  const file = await writeResultJson(result, full.resultsDir, full.stamp)
  console.log(`JSON: ${file}`)
  return result.correct ? 0 : 1
}

process.exitCode = await main()
