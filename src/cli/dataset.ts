import { readFile, rename, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import cliProgress from 'cli-progress'
import type { Command } from 'commander'
import { DatasetTooLargeError, parametersFromQuery, planDataset, WindowTooLongError, type DatasetPlan } from '../datasets/dataset-plan.js'
import { MANIFEST_FILE, parametersRecord, writeDataset } from '../datasets/dataset-writer.js'
import { FolderDatasetSink } from '../datasets/folder-sink.js'
import { sessionLabelSource } from '../datasets/label-source.js'
import type { DatasetManifest } from '../datasets/manifest.js'
import { userNaming } from '../datasets/pseudonyms.js'
import { DatasetConnection } from '../db/readings/dataset-readings.js'
import { detectStorage } from '../db/startup/storage.js'
import { SessionLabels } from '../labels/session-labels.js'
import { ensureSessionReport, reportOptions } from '../reports/report-store.js'
import { datasetExportQuery } from '../schemas/datasets.js'
import { SERVICE_VERSION } from '../version.js'
import { parseDuration } from './duration.js'
import { CliError, withContext } from './run.js'

/** The manifest so far of an export still running (or stopped): what a second run resumes from. */
export const PROGRESS_FILE = '.dataset-export.json'

interface ExportOptions {
  out: string
  layout?: string
  format?: string
  rate?: string
  window?: string
  overlap?: string
  purity?: string
  split?: string
  seed?: string
  from?: string
  to?: string
  users?: string
  sessions?: string
  labels?: string
  complete?: boolean
  includeFlagged?: boolean
  minDuration?: string
  sampleRate?: string
  realUserIds?: boolean
  progress: boolean
}

/** The options as GET /datasets/export's query, checked by the same schema. */
function parseOptions (options: ExportOptions) {
  const minDuration = options.minDuration === undefined
    ? undefined
    : /^\d+(\.\d+)?$/.test(options.minDuration) ? options.minDuration : String(parseDuration(options.minDuration, '--min-duration'))
  const query = Object.fromEntries(Object.entries({
    layout: options.layout,
    format: options.format,
    rate: options.rate,
    window: options.window,
    overlap: options.overlap,
    purity: options.purity,
    split: options.split,
    seed: options.seed,
    from: options.from,
    to: options.to,
    users: options.users,
    sessions: options.sessions,
    labels: options.labels,
    complete: options.complete ? 'true' : undefined,
    includeFlagged: options.includeFlagged ? 'true' : undefined,
    minDuration,
    sampleRate: options.sampleRate,
    realUserIds: options.realUserIds ? 'true' : undefined
  }).filter(([, value]) => value !== undefined))
  const parsed = datasetExportQuery.safeParse(query)
  if (!parsed.success) {
    const flag = (key: string) => `--${key.replace(/[A-Z]/g, letter => `-${letter.toLowerCase()}`)}`
    throw new CliError(parsed.error.issues.map(issue => `${flag(String(issue.path[0]))}: ${issue.message}`).join('; '))
  }
  return parsed.data
}

/** The manifest of an earlier run into the same folder: finished (manifest.json) or not (the progress file). */
async function earlierRun (out: string): Promise<DatasetManifest | undefined> {
  for (const name of [MANIFEST_FILE, PROGRESS_FILE]) {
    const text = await readFile(path.join(out, name), 'utf8').catch(() => undefined)
    if (text !== undefined) return JSON.parse(text) as DatasetManifest
  }
  return undefined
}

async function saveProgress (out: string, manifest: DatasetManifest): Promise<void> {
  const file = path.join(out, PROGRESS_FILE)
  await writeFile(`${file}.tmp`, JSON.stringify(manifest))
  await rename(`${file}.tmp`, file)
}

function progressBar (plan: DatasetPlan, show: boolean) {
  if (!show) return { add: (_count: number) => {}, stop: () => {} }
  const bar = new cliProgress.SingleBar({
    format: 'dataset [{bar}] {percentage}% | {value}/{total} readings | {sessions} sessions | {eta_formatted}',
    stream: process.stderr,
    hideCursor: true
  }, cliProgress.Presets.shades_classic)
  bar.start(Math.max(plan.readings, 1), 0, { sessions: plan.sessions.length })
  let done = 0
  return {
    add: (count: number) => {
      done += count
      // The stored count may lag the rows; never let the bar overflow.
      if (done > bar.getTotal()) bar.setTotal(done)
      bar.update(done)
    },
    stop: () => bar.stop()
  }
}

export function registerDatasetCommands (program: Command): void {
  const dataset = program.command('dataset').description('training sets: sessions in ML-ready layouts with a manifest')

  dataset.command('export')
    .description('write the matching ended sessions into a folder: a file per session, labels.csv and manifest.json; ' +
      'run again with the same options to resume, keeping the files already written whole (checked by sha256)')
    .requiredOption('--out <dir>', 'the dataset folder')
    .option('--layout <layout>', 'long (timestamp,sensor,x,y,z as stored), wide (one row per grid instant) or windows', 'wide')
    .option('--format <format>', 'csv or parquet', 'csv')
    .option('--rate <hz>', 'grid rate in Hz (default: the lowest declared or median rate of the sessions)')
    .option('--window <length>', 'window length, e.g. 2.56s', '2.56s')
    .option('--overlap <share>', 'share of a window the next one overlaps', '0.5')
    .option('--purity <share>', 'least share of a window\'s samples its label must hold (else the window is dropped)', '0.8')
    .option('--split <shares>', 'train,validation,test shares of users, e.g. 0.8,0.1,0.1')
    .option('--seed <seed>', 'seed of the split', 'motion-ingest')
    .option('--from <iso>', 'sessions created at or after this instant')
    .option('--to <iso>', 'sessions created before this instant')
    .option('--users <ids>', 'only these users\' sessions, e.g. 3,17')
    .option('--sessions <ids>', 'only these sessions')
    .option('--labels <names>', 'only sessions with time under any of these labels, e.g. cycling,walking')
    .option('--complete', 'only sessions whose completeness report found no problem')
    .option('--include-flagged', 'also sessions flagged as recorded incorrectly')
    .option('--min-duration <duration>', 'only sessions whose readings span at least this long, e.g. 90s, 5m')
    .option('--sample-rate <hz>', 'only sessions that declared this rate (metadata.sampleRateHz)')
    .option('--real-user-ids', 'name users by id instead of a pseudonym')
    .option('--no-progress', 'no progress bar')
    .action((options: ExportOptions) => withContext(async ({ pool, config, logger }) => {
      const query = parseOptions(options)
      const storage = await detectStorage(pool, false)
      const timeoutMs = config.sessions.reportTimeoutMs
      let plan: DatasetPlan
      try {
        plan = await planDataset({
          db: pool,
          reportOf: async id => {
            const result = await ensureSessionReport(pool, id, reportOptions(storage, timeoutMs)).catch((err: unknown) => {
              logger.warn({ err, sessionId: id }, 'No completeness report for the session; it is left out.')
              return undefined
            })
            return result?.status === 'ready' ? result.report : null
          },
          labels: sessionLabelSource(new SessionLabels(pool))
        }, parametersFromQuery(query))
      } catch (err) {
        if (err instanceof DatasetTooLargeError || err instanceof WindowTooLongError) throw new CliError(err.message)
        throw err
      }
      const excluded = Object.entries(plan.excluded).filter(([, ids]) => ids.length > 0)
      for (const [reason, ids] of excluded) console.error(`Left out ${ids.length} sessions: ${reason.replaceAll('_', ' ')} (${ids.slice(0, 10).join(', ')}${ids.length > 10 ? ', …' : ''}).`)
      if (plan.sessions.length === 0) throw new CliError('No ended session matches.')

      const naming = userNaming({ realIds: query.realUserIds, key: config.datasets.pseudonymKey })
      const earlier = await earlierRun(options.out)
      const parameters = parametersRecord(plan, naming)
      if (earlier && JSON.stringify(earlier.parameters) !== JSON.stringify(parameters)) {
        throw new CliError(`${options.out} holds an export with other parameters (${JSON.stringify(earlier.parameters)}); give another --out, or the same options to resume it.`)
      }
      let kept = 0
      const bar = progressBar(plan, options.progress && Boolean(process.stderr.isTTY))
      const connection = await DatasetConnection.open(pool, logger)
      let manifest: DatasetManifest
      try {
        manifest = await writeDataset(plan, {
          source: connection,
          sink: new FolderDatasetSink(options.out),
          naming,
          service: { name: 'motion-ingest', version: SERVICE_VERSION },
          onReadings: count => bar.add(count),
          previous: earlier,
          onSessionDone: (_entry, reused) => { if (reused) kept++ },
          onProgress: progress => saveProgress(options.out, progress)
        })
      } finally {
        bar.stop()
        await connection.release()
      }
      await rm(path.join(options.out, PROGRESS_FILE), { force: true })
      const { totals } = manifest
      console.error(`Wrote ${totals.sessions} sessions of ${totals.users} users (${kept} kept from an earlier run): ` +
        `${totals.rows} rows, ${totals.bytes} bytes, into ${options.out} (manifest.json).`)
    }))
}
