/**
 * The command line of `npm run bench -- --instances N`: takes --instances and
 * --kill-at, hands every other option to the bench's own parser, runs the
 * comparison, prints it and writes the JSON.
 */
import { defaultBenchOptions, type BenchOptions } from './bench.js'
import { HaproxyMissingError } from './haproxy.js'
import { runInstancesBench } from './instances.js'
import { formatInstancesReport, writeInstancesJson } from './instances-report.js'
import type { PhoneMode } from './phone.js'

export const INSTANCES_HELP = `  --instances N               N service instances behind HAProxy (installed when missing, as root) against one
                              instance, the first killed mid-stream; only that comparison runs (default real
                              time, 200 phones x 30 s; --mode flood, --phones, --seconds, --window apply)
  --kill-at S                 with --instances: SIGKILL the first instance S s into the stream (default: half way; 0: never)`

/** The size when --phones is not given: what one instance keeps up with, after the kill, on a 2-core machine it shares with HAProxy, PostgreSQL, the phones and other work. */
const DEFAULT_SIZE: Record<PhoneMode, { phones: number, seconds: number }> = {
  realtime: { phones: 200, seconds: 30 },
  flood: { phones: 100, seconds: 20 }
}

export function wantsInstances (argv: string[]): boolean {
  return argv.some(arg => arg === '--instances' || arg.startsWith('--instances='))
}

/** Removes `--name V` / `--name=V` from argv and returns its value. */
function takeOption (argv: string[], name: string): string | undefined {
  const at = argv.findIndex(arg => arg === `--${name}` || arg.startsWith(`--${name}=`))
  if (at === -1) return undefined
  const arg = argv[at]!
  if (arg.includes('=')) {
    argv.splice(at, 1)
    return arg.slice(arg.indexOf('=') + 1)
  }
  const value = argv[at + 1]
  if (value === undefined || value.startsWith('--')) throw new Error(`--${name} needs a value`)
  argv.splice(at, 2)
  return value
}

function count (name: string, value: string, min: number): number {
  const number = Number(value)
  if (!Number.isFinite(number) || number < min) throw new Error(`--${name} must be a number >= ${min}, got ${value}`)
  return number
}

export async function instancesMain (argv: string[], parseCommandLine: (argv: string[]) => Partial<BenchOptions> | 'help', help: string): Promise<number> {
  const rest = [...argv]
  let instances: number
  let killAt: string | undefined
  let parsed: Partial<BenchOptions> | 'help'
  try {
    instances = count('instances', takeOption(rest, 'instances') ?? '', 2)
    killAt = takeOption(rest, 'kill-at')
    parsed = parseCommandLine(rest)
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${help}`)
    return 2
  }
  if (parsed === 'help') {
    console.log(help)
    return 0
  }
  const bench = defaultBenchOptions(parsed)
  // --mode all (the default) means the real-time comparison here; --mode flood selects the flood.
  const mode: PhoneMode = bench.modes.length === 1 ? bench.modes[0]! : 'realtime'
  const given = (flag: string) => rest.some(arg => arg === `--${flag}` || arg.startsWith(`--${flag}=`))
  const phones = given('phones') || given(`${mode}-phones`) ? bench[mode].phones : DEFAULT_SIZE[mode].phones
  const seconds = given('seconds') || given(`${mode}-seconds`) ? bench[mode].seconds : DEFAULT_SIZE[mode].seconds
  let killAtSeconds: number
  try {
    killAtSeconds = killAt === undefined ? seconds / 2 : count('kill-at', killAt, 0)
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${help}`)
    return 2
  }
  let result
  try {
    result = await runInstancesBench({ instances, killAtSeconds, mode, phones, seconds, bench })
  } catch (err) {
    if (!(err instanceof HaproxyMissingError)) throw err
    console.error(err.message)
    return 2
  }
  console.log(`\n${formatInstancesReport(result)}\n`)
  const file = await writeInstancesJson(result, bench.resultsDir, bench.stamp)
  console.log(`JSON: ${file}`)
  return result.correct ? 0 : 1
}
