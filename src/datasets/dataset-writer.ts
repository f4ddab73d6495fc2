import { createHash } from 'node:crypto'
import { formatMicros } from '../schemas/timestamps.js'
import { LabelCursor } from './label-cursor.js'
import {
  labelTime, MANIFEST_VERSION, manifestTotals,
  type DatasetManifest, type DatasetParametersRecord, type ManifestFile, type ManifestSession
} from './manifest.js'
import type { DatasetPlan, PlannedSession } from './dataset-plan.js'
import type { UserNaming } from './pseudonyms.js'
import { sessionContent, type ReadingsSource } from './session-content.js'

/** Where a dataset's files go: a zip being streamed, or a folder. */
export interface DatasetSink {
  /** Writes one file whole; resolves with its digest once it is. */
  write: (path: string, bytes: AsyncIterable<Buffer>, options: { compress: boolean }) => Promise<{ sha256: string, bytes: number }>
  /** Whether the file an earlier run wrote is there whole, with this digest (a resumed export keeps it). */
  holds?: (file: ManifestFile) => Promise<boolean>
}

export interface WriteDatasetOptions {
  source: ReadingsSource
  sink: DatasetSink
  naming: UserNaming
  service: { name: string, version: string }
  /** Told of readings as they are read, and of sessions kept from an earlier run, for a progress bar. */
  onReadings?: (count: number) => void
  /** The manifest of an earlier, unfinished run of the same export: its files whose fingerprint and digest still match are kept. */
  previous?: DatasetManifest | undefined
  /** Told of each session's entry once its file is written, or kept from the earlier run (`reused`). */
  onSessionDone?: (entry: ManifestSession, reused: boolean) => void
  /** Told after each session's file, with the manifest so far (a folder export keeps it, to resume from). */
  onProgress?: (manifest: DatasetManifest) => Promise<void>
  /** Stops the export between two pieces of a file. */
  signal?: AbortSignal
}

export const LABELS_FILE = 'labels.csv'
export const MANIFEST_FILE = 'manifest.json'

/** The export's parameters as the manifest records them (and as a resumed run must repeat them). */
export function parametersRecord (plan: DatasetPlan, naming: UserNaming): DatasetParametersRecord {
  const { parameters } = plan
  return {
    layout: parameters.layout,
    format: parameters.format,
    rateHz: plan.rateHz,
    window: plan.window && { seconds: parameters.windowSeconds, overlap: parameters.overlap, ...plan.window },
    filters: JSON.parse(JSON.stringify(parameters.filters)),
    users: naming.kind,
    split: parameters.split ?? null
  }
}

function fingerprint (session: PlannedSession, parameters: DatasetParametersRecord): string {
  return createHash('sha256').update(JSON.stringify({
    manifest: MANIFEST_VERSION,
    layout: parameters.layout,
    format: parameters.format,
    rateHz: parameters.rateHz,
    window: parameters.window,
    session: session.candidate.id,
    readings: session.candidate.readings,
    report: session.report.computedAt,
    labels: session.labelling.spans,
    path: session.path
  })).digest('hex')
}

const iso = (us: number | null) => us === null ? null : formatMicros(us)

/** A CSV field, quoted when it holds a comma, quote or line break. */
const csvField = (value: string) => /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value

/** Every labelled stretch of the exported sessions, as the rows were labelled: interval labels and the default label where none applies. */
async function * labelsCsv (sessions: readonly PlannedSession[]): AsyncGenerator<Buffer> {
  yield Buffer.from('session_id,start,end,label,source,note\n')
  for (const session of sessions) {
    let text = ''
    for (const span of session.labelling.spans) {
      if (span.label === null) continue
      text += `${session.candidate.id},${formatMicros(span.startUs)},${formatMicros(span.endUs)},${span.label},${span.source},${csvField(span.note ?? '')}\n`
    }
    if (text) yield Buffer.from(text)
  }
}

async function * untilAborted (bytes: AsyncIterable<Buffer>, signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
  for await (const piece of bytes) {
    signal?.throwIfAborted()
    yield piece
  }
}

/**
 * Writes the planned sessions' files one after another, then labels.csv,
 * then manifest.json: the per-file digests are known only once each file is
 * written, so the manifest comes last. A session whose file an earlier run
 * left whole (same fingerprint, same sha256) is kept rather than written again.
 */
export async function writeDataset (plan: DatasetPlan, options: WriteDatasetOptions): Promise<DatasetManifest> {
  const { sink, naming } = options
  const parameters = parametersRecord(plan, naming)
  const previous = new Map((options.previous?.sessions ?? []).map(session => [session.id, session]))
  const manifest: DatasetManifest = {
    manifestVersion: MANIFEST_VERSION,
    createdAt: new Date().toISOString(),
    service: options.service,
    parameters,
    users: { naming: naming.kind, pseudonymKey: naming.key },
    sessions: [],
    excluded: plan.excluded,
    files: [],
    totals: manifestTotals([], [], plan.parameters.split !== undefined)
  }
  const compress = plan.parameters.format === 'csv'
  for (const session of plan.sessions) {
    options.signal?.throwIfAborted()
    const { candidate, report, labelling, facts } = session
    const print = fingerprint(session, parameters)
    const earlier = previous.get(candidate.id)
    let entry: ManifestSession
    let reused = false
    if (earlier && earlier.fingerprint === print && earlier.file.path === session.path && sink.holds && await sink.holds(earlier.file)) {
      entry = { ...earlier, user: naming.nameOf(candidate.userId) }
      reused = true
      options.onReadings?.(candidate.readings)
    } else {
      const content = sessionContent(options.source, {
        layout: plan.parameters.layout,
        format: plan.parameters.format,
        sessionId: candidate.id,
        rateHz: plan.rateHz ?? 0,
        window: plan.window ?? { samples: 1, step: 1, purity: 1 },
        facts,
        labels: new LabelCursor(labelling.spans),
        createdBy: `${options.service.name} ${options.service.version}`,
        onReadings: options.onReadings
      })
      const digest = await sink.write(session.path, untilAborted(content.bytes, options.signal), { compress })
      const { stats } = content
      entry = {
        id: candidate.id,
        user: naming.nameOf(candidate.userId),
        split: session.split,
        createdAt: candidate.createdAt,
        endedAt: candidate.endedAt,
        firstReading: iso(facts.firstUs),
        lastReading: iso(facts.lastUs),
        durationSeconds: facts.firstUs !== null && facts.lastUs !== null ? (facts.lastUs - facts.firstUs) / 1e6 : 0,
        readings: candidate.readings,
        rateHz: plan.rateHz,
        metadata: candidate.metadata,
        completeness: report.summary,
        labels: {
          default: labelling.defaultLabel,
          unmatchedActivity: labelling.unmatchedActivity,
          intervals: labelling.intervals.length,
          ...labelTime(labelling.spans, facts.firstUs, facts.lastUs)
        },
        rows: stats.rows,
        ...(stats.segments && {
          segments: {
            count: stats.segments.count,
            listed: stats.segments.listed.map(segment => ({ index: segment.index, start: formatMicros(segment.startUs), end: formatMicros(segment.endUs), rows: segment.rows }))
          }
        }),
        ...(stats.windows && { windows: { ...stats.windows } }),
        file: { path: session.path, ...digest, rows: stats.rows },
        fingerprint: print
      }
    }
    options.onSessionDone?.(entry, reused)
    manifest.sessions.push(entry)
    manifest.files.push(entry.file)
    manifest.totals = manifestTotals(manifest.sessions, manifest.files, plan.parameters.split !== undefined)
    await options.onProgress?.(manifest)
  }
  const labelRows = plan.sessions.reduce((sum, session) => sum + session.labelling.spans.filter(span => span.label !== null).length, 0)
  const labels = await sink.write(LABELS_FILE, labelsCsv(plan.sessions), { compress: true })
  manifest.files.push({ path: LABELS_FILE, ...labels, rows: labelRows })
  manifest.totals = manifestTotals(manifest.sessions, manifest.files, plan.parameters.split !== undefined)
  await sink.write(MANIFEST_FILE, (async function * () { yield Buffer.from(JSON.stringify(manifest, null, 2) + '\n') })(), { compress: true })
  return manifest
}
