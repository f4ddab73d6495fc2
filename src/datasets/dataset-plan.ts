import { findDatasetCandidates, MAX_DATASET_SESSIONS, type DatasetCandidate, type DatasetSessionQuery } from '../db/sessions/dataset-sessions.js'
import type { Queryable } from '../db/queryable.js'
import { intendedRates } from '../reports/build-report.js'
import type { DatasetExportQuery, SessionExportQuery } from '../schemas/datasets.js'
import { REPORT_VERSION, type SessionReport } from '../schemas/session-report.js'
import { SENSORS } from '../schemas/sensors.js'
import type { DatasetLabelSource, SessionLabelling } from './label-source.js'
import { EXCLUSION_REASONS, type ExclusionReason } from './manifest.js'
import type { DatasetFormat, DatasetLayout } from './session-content.js'
import { gridFacts, type SessionGridFacts } from './session-grid.js'
import { splitOfUser, type SplitName, type SplitSpec } from './split.js'
import { windowShape } from './windows.js'

/** Which sessions go into a dataset. */
export interface DatasetFilters extends DatasetSessionQuery {
  /** Sessions with time under any of these labels (interval or default). */
  labels?: string[] | undefined
  /** Only sessions whose completeness report found no problem. */
  complete?: boolean | undefined
  /** Only sessions whose readings span at least this long. */
  minDurationSeconds?: number | undefined
  /** Only sessions whose declared rate (metadata.sampleRateHz, every declared sensor) is this. */
  sampleRateHz?: number | undefined
}

export interface DatasetParameters {
  layout: DatasetLayout
  format: DatasetFormat
  /** The grid's rate (wide, windows); unset: the lowest default rate of the sessions (declared, else median), so every file shares one grid. */
  rateHz?: number | undefined
  windowSeconds: number
  overlap: number
  purity: number
  split?: SplitSpec | undefined
  filters: DatasetFilters
}

export interface PlannedSession {
  candidate: DatasetCandidate
  report: SessionReport
  labelling: SessionLabelling
  facts: SessionGridFacts
  split: SplitName | null
  /** The file's path in the dataset. */
  path: string
}

export interface DatasetPlan {
  parameters: DatasetParameters
  /** The grid's rate; null for the long layout. */
  rateHz: number | null
  window: { samples: number, step: number, purity: number } | null
  sessions: PlannedSession[]
  excluded: Record<ExclusionReason, number[]>
  /** Readings stored for the planned sessions: what a progress bar counts to. */
  readings: number
}

export interface PlanSources {
  db: Queryable
  /** The session's completeness report, computed when it has none (or an outdated one); null when it cannot be had now. */
  reportOf: (sessionId: number) => Promise<SessionReport | null>
  labels: DatasetLabelSource
}

/**
 * The most samples one window may hold, in any export. The window cutter
 * keeps a batch of 64 windows of 9 channels in memory, and a row has 9
 * columns per sample: 4,096 (41 s at 100 Hz; UCI HAR's windows are 128)
 * bounds a batch to 19 MB and a row to 36,864 values, whatever window and
 * rate a caller asks for.
 */
export const MAX_WINDOW_SAMPLES = 4096

/** A window longer than MAX_WINDOW_SAMPLES at the export's grid rate. */
export class WindowTooLongError extends Error {
  readonly code = 'WINDOW_TOO_LONG'

  constructor (readonly samples: number) {
    super(`A window of ${samples} samples is more than the ${MAX_WINDOW_SAMPLES} an export takes; ask for a shorter window or a lower rate`)
    this.name = 'WindowTooLongError'
  }
}

/** More sessions match than one export takes. */
export class DatasetTooLargeError extends Error {
  readonly code = 'DATASET_TOO_LARGE'

  constructor () {
    super(`More than ${MAX_DATASET_SESSIONS} sessions match; narrow the filters (dates, users) and export in parts`)
    this.name = 'DatasetTooLargeError'
  }
}

const declaredRateIs = (metadata: Record<string, unknown>, hz: number) => {
  const declared = [...intendedRates(metadata).values()].filter(rate => rate !== null)
  return declared.length > 0 && declared.every(rate => rate === hz)
}

export function dataPath (layout: DatasetLayout, format: DatasetFormat, sessionId: number, split: SplitName | null): string {
  const name = `session-${sessionId}${layout === 'windows' ? '.windows' : ''}.${format}`
  // Hive-style folders: pyarrow, polars and DuckDB read `split` as a column of the folder's files.
  return split ? `data/split=${split}/${name}` : `data/${name}`
}

/**
 * Picks the sessions of a dataset: the database's filters first, then those
 * that need the report (completeness, duration, declared rate) or the labels;
 * every session left out is counted under its reason. Reports missing or
 * outdated are computed one after another.
 */
export async function planDataset (sources: PlanSources, parameters: DatasetParameters): Promise<DatasetPlan> {
  const { filters } = parameters
  const candidates = await findDatasetCandidates(sources.db, filters)
  if (candidates.length > MAX_DATASET_SESSIONS) throw new DatasetTooLargeError()
  const excluded = Object.fromEntries(EXCLUSION_REASONS.map(reason => [reason, [] as number[]])) as Record<ExclusionReason, number[]>
  const wanted = filters.labels && filters.labels.length > 0 ? new Set(filters.labels) : undefined
  const kept: Array<Omit<PlannedSession, 'path' | 'split'>> = []
  for (const candidate of candidates) {
    const stored = candidate.report
    const report = stored && stored.version === REPORT_VERSION ? stored : await sources.reportOf(candidate.id)
    if (!report) {
      excluded.no_report.push(candidate.id)
      continue
    }
    const facts = gridFacts(report, candidate.metadata)
    const readings = SENSORS.reduce((sum, name) => sum + (report.sensors[name]?.readings ?? 0), 0)
    if (readings === 0 || (parameters.layout !== 'long' && !facts.sensors.some(Boolean))) {
      excluded.no_readings.push(candidate.id)
      continue
    }
    if (filters.complete && !report.summary.complete) {
      excluded.incomplete.push(candidate.id)
      continue
    }
    const duration = facts.firstUs !== null && facts.lastUs !== null ? (facts.lastUs - facts.firstUs) / 1e6 : 0
    if (filters.minDurationSeconds !== undefined && duration < filters.minDurationSeconds) {
      excluded.too_short.push(candidate.id)
      continue
    }
    if (filters.sampleRateHz !== undefined && !declaredRateIs(candidate.metadata, filters.sampleRateHz)) {
      excluded.sample_rate.push(candidate.id)
      continue
    }
    const labelling = await sources.labels.labelsOf(candidate.id)
    if (!labelling) continue
    if (wanted && !labelling.spans.some(span => span.label !== null && wanted.has(span.label) && span.endUs > span.startUs)) {
      excluded.label.push(candidate.id)
      continue
    }
    kept.push({ candidate, report, labelling, facts })
  }
  const gridded = parameters.layout !== 'long'
  const defaults = kept.map(session => session.facts.defaultRateHz).filter((rate): rate is number => rate !== null)
  const rateHz = gridded ? parameters.rateHz ?? (defaults.length > 0 ? Math.min(...defaults) : null) : null
  const window = parameters.layout === 'windows' && rateHz !== null
    ? { ...windowShape(parameters.windowSeconds, rateHz, parameters.overlap), purity: parameters.purity }
    : null
  if (window && window.samples > MAX_WINDOW_SAMPLES) throw new WindowTooLongError(window.samples)
  const sessions = kept.map(session => {
    const split = parameters.split ? splitOfUser(session.candidate.userId, parameters.split) : null
    return { ...session, split, path: dataPath(parameters.layout, parameters.format, session.candidate.id, split) }
  })
  return { parameters, rateHz, window, sessions, excluded, readings: sessions.reduce((sum, session) => sum + session.candidate.readings, 0) }
}

/** The layout, format and grid a query asks for: what a whole export and one session's download share. */
export function shapeFromQuery (query: SessionExportQuery): Omit<DatasetParameters, 'split' | 'filters'> {
  return {
    layout: query.layout,
    format: query.format,
    rateHz: query.rate,
    windowSeconds: query.window,
    overlap: query.overlap,
    purity: query.purity
  }
}

/** The parameters a validated GET /datasets/export query (or the CLI's options) asks for. */
export function parametersFromQuery (query: DatasetExportQuery): DatasetParameters {
  return {
    ...shapeFromQuery(query),
    split: query.split && { fractions: query.split, seed: query.seed },
    filters: {
      from: query.from,
      to: query.to,
      userIds: query.users,
      sessionIds: query.sessions,
      includeFlagged: query.includeFlagged,
      labels: query.labels,
      complete: query.complete,
      minDurationSeconds: query.minDuration,
      sampleRateHz: query.sampleRate
    }
  }
}
