import type { SessionReport } from '../../schemas/session-report.js'
import type { Queryable } from '../queryable.js'

/** What the database can select by; the filters that need a report or the labels are applied after. */
export interface DatasetSessionQuery {
  /** Sessions created at or after this instant (ISO-8601). */
  from?: string | undefined
  /** Sessions created before this instant (ISO-8601). */
  to?: string | undefined
  userIds?: number[] | undefined
  sessionIds?: number[] | undefined
  /** Sessions flagged as recorded incorrectly are left out unless true. */
  includeFlagged?: boolean | undefined
}

/** An ended session that may go into a dataset, with its stored report (null when it has none, or one of an older version). */
export interface DatasetCandidate {
  id: number
  userId: number
  createdAt: string
  endedAt: string
  metadata: Record<string, unknown>
  readings: number
  flagged: boolean
  report: SessionReport | null
}

interface CandidateRow {
  id: number
  user_id: number
  created_at: Date
  destroyed_at: Date
  metadata: Record<string, unknown>
  total_sensor_readings_written: number
  flagged_incorrect: boolean
  report: SessionReport | null
}

/** At most this many sessions go into one dataset export: the manifest is built in memory. */
export const MAX_DATASET_SESSIONS = 20_000

/**
 * The ended sessions that match, oldest first, with their reports: sessions
 * still recording are never exported (their readings are not all there).
 * One more than MAX_DATASET_SESSIONS is read, so the caller can tell.
 */
export async function findDatasetCandidates (db: Queryable, query: DatasetSessionQuery): Promise<DatasetCandidate[]> {
  const params: unknown[] = []
  const conditions = ['s.destroyed_at is not null']
  const add = (value: unknown, condition: (placeholder: string) => string) => {
    params.push(value)
    conditions.push(condition(`$${params.length}`))
  }
  if (query.from !== undefined) add(query.from, p => `s.created_at >= ${p}::timestamptz`)
  if (query.to !== undefined) add(query.to, p => `s.created_at < ${p}::timestamptz`)
  if (query.userIds !== undefined) add(query.userIds, p => `s.user_id = any(${p}::bigint[])`)
  if (query.sessionIds !== undefined) add(query.sessionIds, p => `s.id = any(${p}::bigint[])`)
  if (!query.includeFlagged) conditions.push('not s.flagged_incorrect')
  params.push(MAX_DATASET_SESSIONS + 1)
  const { rows } = await db.query<CandidateRow>(
    `select s.id, s.user_id, s.created_at, s.destroyed_at, s.metadata, s.total_sensor_readings_written, s.flagged_incorrect, r.report
     from sessions s left join session_reports r on r.session_id = s.id
     where ${conditions.join(' and ')}
     order by s.created_at, s.id
     limit $${params.length}`, params)
  return rows.map(row => ({
    id: row.id,
    userId: row.user_id,
    createdAt: row.created_at.toISOString(),
    endedAt: row.destroyed_at.toISOString(),
    metadata: row.metadata,
    readings: row.total_sensor_readings_written,
    flagged: row.flagged_incorrect,
    report: row.report
  }))
}
