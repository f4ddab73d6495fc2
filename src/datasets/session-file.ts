import type { SessionExportQuery } from '../schemas/datasets.js'
import { planDataset, shapeFromQuery, WindowTooLongError, type DatasetPlan, type PlanSources, type PlannedSession } from './dataset-plan.js'
import { LabelCursor } from './label-cursor.js'
import { sessionContent, type ReadingsSource, type SessionContentStats } from './session-content.js'

export type SessionFilePlan =
  | { status: 'ready', plan: DatasetPlan, session: PlannedSession, fileName: string, contentType: string }
  /** Not an ended session (any more): it was deleted, or is still recording. */
  | { status: 'not-ended' }
  /** Its completeness report, which the grid is built from, could not be had now. */
  | { status: 'no-report' }
  /** No readings, or (wide, windows) no sensor with readings enough to interpolate. */
  | { status: 'no-readings' }
  | { status: 'window-too-long', samples: number }

const CONTENT_TYPES = { csv: 'text/csv; charset=utf-8', parquet: 'application/vnd.apache.parquet' } as const

/** `session-12-wide-50hz.parquet`: the session, layout and grid rate, so two downloads of one session do not overwrite each other. */
export function sessionFileName (sessionId: number, plan: DatasetPlan): string {
  const { layout, format } = plan.parameters
  return `session-${sessionId}-${layout}${plan.rateHz === null ? '' : `-${plan.rateHz}hz`}.${format}`
}

/**
 * One session's file as a dataset export would hold it: the session is
 * planned by planDataset alone (flagged or not, no other filter), so its
 * grid rate, window shape and labels are the dataset's, defaults included.
 */
export async function planSessionFile (sources: PlanSources, sessionId: number, query: SessionExportQuery): Promise<SessionFilePlan> {
  let plan: DatasetPlan
  try {
    plan = await planDataset(sources, { ...shapeFromQuery(query), filters: { sessionIds: [sessionId], includeFlagged: true } })
  } catch (err) {
    if (err instanceof WindowTooLongError) return { status: 'window-too-long', samples: err.samples }
    throw err
  }
  const [session] = plan.sessions
  if (!session) {
    if (plan.excluded.no_report.length > 0) return { status: 'no-report' }
    if (plan.excluded.no_readings.length > 0) return { status: 'no-readings' }
    return { status: 'not-ended' }
  }
  return { status: 'ready', plan, session, fileName: sessionFileName(sessionId, plan), contentType: CONTENT_TYPES[plan.parameters.format] }
}

/** The planned file's bytes, read from `source` as they are pulled: what writeDataset writes for the session. */
export function sessionFileContent (source: ReadingsSource, planned: { plan: DatasetPlan, session: PlannedSession }, createdBy: string): { bytes: AsyncIterable<Buffer>, stats: SessionContentStats } {
  const { plan, session } = planned
  return sessionContent(source, {
    layout: plan.parameters.layout,
    format: plan.parameters.format,
    sessionId: session.candidate.id,
    rateHz: plan.rateHz ?? 0,
    window: plan.window ?? { samples: 1, step: 1, purity: 1 },
    facts: session.facts,
    labels: new LabelCursor(session.labelling.spans),
    createdBy
  })
}
