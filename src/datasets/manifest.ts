import type { ReportSummary } from '../schemas/session-report.js'
import type { LabelSpan } from './label-cursor.js'
import type { DatasetFormat, DatasetLayout } from './session-content.js'
import type { SplitName } from './split.js'
import type { WindowCounts } from './windows.js'

/** Bumped when the manifest's meaning changes. */
export const MANIFEST_VERSION = 1

/** One file of the dataset, as written. */
export interface ManifestFile {
  /** Relative to the dataset's root, `/`-separated. */
  path: string
  sha256: string
  bytes: number
  rows: number
}

export interface LabelTime {
  /** Seconds of the session's readings (first to last) under each label. */
  seconds: Record<string, number>
  unlabelledSeconds: number
}

export interface ManifestSession {
  id: number
  /** A pseudonym, or the user id when the export asked for ids. */
  user: string
  split: SplitName | null
  createdAt: string
  endedAt: string
  firstReading: string | null
  lastReading: string | null
  durationSeconds: number
  /** Readings stored for the session. */
  readings: number
  /** The grid's rate (wide and windows), null for the long layout. */
  rateHz: number | null
  metadata: Record<string, unknown>
  /** The completeness report's summary. */
  completeness: ReportSummary
  labels: LabelTime & {
    /** metadata.activity when it names a vocabulary label: the label wherever no interval label applies. */
    default: string | null
    /** metadata.activity when it names none, as written: the session is unlabelled there. */
    unmatchedActivity: string | null
    intervals: number
  }
  /** Rows of its file: readings, grid instants or windows. */
  rows: number
  /** Wide and windows: the stretches between gaps (the first MAX_LISTED_SEGMENTS). */
  segments?: { count: number, listed: Array<{ index: number, start: string, end: string, rows: number }> }
  windows?: WindowCounts
  file: ManifestFile
  /** What the file was made from (parameters, readings, report, labels): an unchanged fingerprint lets a resumed export keep the file. */
  fingerprint: string
}

export const EXCLUSION_REASONS = ['no_report', 'no_readings', 'incomplete', 'too_short', 'sample_rate', 'label'] as const
export type ExclusionReason = typeof EXCLUSION_REASONS[number]

export interface DatasetParametersRecord {
  layout: DatasetLayout
  format: DatasetFormat
  rateHz: number | null
  window: { seconds: number, overlap: number, samples: number, step: number, purity: number } | null
  filters: Record<string, unknown>
  users: 'pseudonym' | 'id'
  split: { fractions: [number, number, number], seed: string } | null
}

export interface SplitTotals {
  users: number
  sessions: number
  rows: number
  labelSeconds: Record<string, number>
}

export interface DatasetManifest {
  manifestVersion: number
  createdAt: string
  service: { name: string, version: string }
  parameters: DatasetParametersRecord
  /** How users are named; `per-export`: pseudonyms drawn for this export only (DATASET_PSEUDONYM_KEY unset). */
  users: { naming: 'pseudonym' | 'id', pseudonymKey: 'stable' | 'per-export' | null }
  sessions: ManifestSession[]
  /** Sessions that matched the database filters but were left out, by reason. */
  excluded: Record<ExclusionReason, number[]>
  /** Every file but this manifest. */
  files: ManifestFile[]
  totals: {
    sessions: number
    users: number
    readings: number
    rows: number
    bytes: number
    labelSeconds: Record<string, number>
    unlabelledSeconds: number
    bySplit: Partial<Record<SplitName, SplitTotals>> | null
  }
}

const seconds = (us: number) => Math.round(us) / 1e6

/** Time under each label between the session's first and last reading. */
export function labelTime (spans: readonly LabelSpan[], firstUs: number | null, lastUs: number | null): LabelTime {
  const byLabel = new Map<string, number>()
  let unlabelled = 0
  if (firstUs !== null && lastUs !== null) {
    for (const span of spans) {
      const length = Math.max(0, Math.min(span.endUs, lastUs) - Math.max(span.startUs, firstUs))
      if (length === 0) continue
      if (span.label === null) unlabelled += length
      else byLabel.set(span.label, (byLabel.get(span.label) ?? 0) + length)
    }
  }
  return {
    seconds: Object.fromEntries([...byLabel].sort(([a], [b]) => a < b ? -1 : 1).map(([label, us]) => [label, seconds(us)])),
    unlabelledSeconds: seconds(unlabelled)
  }
}

function addSeconds (into: Record<string, number>, from: Record<string, number>): void {
  for (const [label, value] of Object.entries(from)) into[label] = Math.round(((into[label] ?? 0) + value) * 1e6) / 1e6
}

/** The totals over the sessions and files. */
export function manifestTotals (sessions: readonly ManifestSession[], files: readonly ManifestFile[], split: boolean): DatasetManifest['totals'] {
  const labelSeconds: Record<string, number> = {}
  let unlabelled = 0
  const bySplit: Partial<Record<SplitName, SplitTotals & { userSet: Set<string> }>> = {}
  for (const session of sessions) {
    addSeconds(labelSeconds, session.labels.seconds)
    unlabelled += session.labels.unlabelledSeconds
    if (session.split) {
      const side = bySplit[session.split] ??= { users: 0, sessions: 0, rows: 0, labelSeconds: {}, userSet: new Set() }
      side.userSet.add(session.user)
      side.sessions++
      side.rows += session.rows
      addSeconds(side.labelSeconds, session.labels.seconds)
    }
  }
  return {
    sessions: sessions.length,
    users: new Set(sessions.map(session => session.user)).size,
    readings: sessions.reduce((sum, session) => sum + session.readings, 0),
    rows: sessions.reduce((sum, session) => sum + session.rows, 0),
    bytes: files.reduce((sum, file) => sum + file.bytes, 0),
    labelSeconds,
    unlabelledSeconds: Math.round(unlabelled * 1e6) / 1e6,
    bySplit: split
      ? Object.fromEntries(Object.entries(bySplit).map(([name, { userSet, ...side }]) => [name, { ...side, users: userSet.size }]))
      : null
  }
}
