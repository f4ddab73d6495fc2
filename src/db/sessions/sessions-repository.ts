import type { ReportSummary } from '../../schemas/session-report.js'
import { encodeSessionCursor, type DestroyReason, type Integrity, type Session, type SessionCursor, type SessionMetadata, type SessionSort } from '../../schemas/sessions.js'
import { withTransaction, type Pool } from '../pool.js'
import type { Queryable } from '../queryable.js'
import { isoTimestampSql } from '../readings/readings-sql.js'

export interface SessionRow {
  id: number
  user_id: number
  created_at: Date
  expires_at: Date
  destroyed_at: Date | null
  destroy_reason: DestroyReason | null
  total_sensor_readings_written: number
  total_sensor_readings_sent: number | null
  integrity: Integrity | null
  metadata: SessionMetadata
  flagged_incorrect: boolean
  flag_reason: string | null
  flagged_at: Date | null
  report_summary: ReportSummary | null
}

export const SESSION_COLUMNS = `id, user_id, created_at, expires_at, destroyed_at, destroy_reason,
  total_sensor_readings_written, total_sensor_readings_sent, integrity, metadata,
  flagged_incorrect, flag_reason, flagged_at,
  (select summary from session_reports r where r.session_id = sessions.id) as report_summary`

export function toSession (row: SessionRow): Session {
  return {
    id: row.id,
    userId: row.user_id,
    createdAt: row.created_at.toISOString(),
    expiresAt: row.expires_at.toISOString(),
    destroyedAt: row.destroyed_at?.toISOString() ?? null,
    destroyReason: row.destroy_reason,
    totalSensorReadingsWritten: row.total_sensor_readings_written,
    totalSensorReadingsSent: row.total_sensor_readings_sent,
    integrity: row.integrity,
    metadata: row.metadata,
    flaggedIncorrect: row.flagged_incorrect,
    flagReason: row.flag_reason,
    flaggedAt: row.flagged_at?.toISOString() ?? null,
    report: row.report_summary
  }
}

export async function findSessionById (db: Queryable, id: number): Promise<Session | undefined> {
  const { rows: [row] } = await db.query<SessionRow>(`select ${SESSION_COLUMNS} from sessions where id = $1`, [id])
  return row && toSession(row)
}

export interface SessionFilter {
  /** Only this user's sessions; all users' when absent. */
  userId?: number
  integrity?: Integrity
  /** true: sessions whose report found a problem; false: those whose report found none. Unreported sessions match neither. */
  incomplete?: boolean
  /** true: flagged as recorded incorrectly; false: not flagged. */
  flagged?: boolean
  /** true: recording now; false: ended. */
  active?: boolean
  /** Started at or after this instant (ISO-8601). */
  from?: string
  /** Started before this instant (ISO-8601). */
  to?: string
  /** Labelled so: an interval label of this name, or metadata.activity naming it (the default label). */
  label?: string
}

function filterSql (filter: SessionFilter, params: unknown[]): string {
  const conditions: string[] = []
  const add = (value: unknown, condition: (placeholder: string) => string) => {
    params.push(value)
    conditions.push(condition(`$${params.length}`))
  }
  if (filter.userId !== undefined) add(filter.userId, p => `user_id = ${p}`)
  if (filter.integrity !== undefined) add(filter.integrity, p => `integrity = ${p}`)
  if (filter.incomplete !== undefined) {
    add(!filter.incomplete, p => `exists (select 1 from session_reports r where r.session_id = sessions.id and r.complete = ${p})`)
  }
  if (filter.flagged !== undefined) add(filter.flagged, p => `flagged_incorrect = ${p}`)
  if (filter.active !== undefined) conditions.push(filter.active ? 'destroyed_at is null' : 'destroyed_at is not null')
  if (filter.from !== undefined) add(filter.from, p => `created_at >= ${p}::timestamptz`)
  if (filter.to !== undefined) add(filter.to, p => `created_at < ${p}::timestamptz`)
  if (filter.label !== undefined) {
    add(filter.label, p => `(exists (select 1 from session_labels l where l.session_id = sessions.id and l.label = ${p})
      or lower(metadata->>'activity') = ${p})`)
  }
  return conditions.length ? `where ${conditions.join(' and ')}` : ''
}

/** A page of sessions, newest first, with the total matching the filter. */
export async function listSessions (db: Queryable, filter: SessionFilter, take: number, skip: number): Promise<{ items: Session[], total: number }> {
  const { items, total } = await listSessionsPage(db, filter, { take, skip, sort: '-createdAt' })
  return { items, total }
}

export interface SessionPaging {
  take: number
  /** Ignored with a cursor. */
  skip: number
  sort: SessionSort
  /** Continue after this item; its sort must be `sort`. */
  cursor?: SessionCursor | undefined
}

/** The sort key of each order as SQL, and as text for a cursor (created_at with its microseconds). */
const SORT_KEYS: Record<'createdAt' | 'readings', { column: string, text: string, cast: string }> = {
  createdAt: { column: 'created_at', text: isoTimestampSql('created_at'), cast: 'timestamptz' },
  readings: { column: 'total_sensor_readings_written', text: 'total_sensor_readings_written::text', cast: 'bigint' }
}

/** The distinct names of a session's interval labels, in name order; the default label (metadata.activity) is in its metadata. */
const LABEL_NAMES_SQL = 'array(select distinct l.label from session_labels l where l.session_id = sessions.id order by l.label)'

/**
 * A page of sessions in the given order, the total matching the filter, and
 * the cursor of the next page (one more row is read to know whether there is
 * one). A cursor page continues strictly after its (sort value, id), so it
 * neither repeats nor skips sessions created meanwhile, which skip would.
 */
export async function listSessionsPage (db: Queryable, filter: SessionFilter, paging: SessionPaging):
Promise<{ items: Array<Session & { labels: string[] }>, total: number, nextCursor: string | null }> {
  const descending = paging.sort.startsWith('-')
  const key = SORT_KEYS[paging.sort.replace('-', '') as keyof typeof SORT_KEYS]
  const direction = descending ? 'desc' : 'asc'
  const pageParams: unknown[] = [paging.take + 1]
  let pageWhere = filterSql(filter, pageParams)
  if (paging.cursor) {
    pageParams.push(paging.cursor.value, paging.cursor.id)
    const after = `(${key.column}, id) ${descending ? '<' : '>'} ($${pageParams.length - 1}::${key.cast}, $${pageParams.length}::bigint)`
    pageWhere = pageWhere ? `${pageWhere} and ${after}` : `where ${after}`
  } else {
    pageParams.push(paging.skip)
  }
  const offset = paging.cursor ? '' : `offset $${pageParams.length}`
  const countParams: unknown[] = []
  const countWhere = filterSql(filter, countParams)
  const [{ rows }, { rows: [count] }] = await Promise.all([
    db.query<SessionRow & { sort_key: string, labels: string[] }>(
      `select ${SESSION_COLUMNS}, ${key.text} as sort_key, ${LABEL_NAMES_SQL} as labels from sessions ${pageWhere}
       order by ${key.column} ${direction}, id ${direction} limit $1 ${offset}`, pageParams),
    db.query<{ total: number }>(`select count(*)::int as total from sessions ${countWhere}`, countParams)
  ])
  const more = rows.length > paging.take
  const pageRows = more ? rows.slice(0, paging.take) : rows
  const last = pageRows[pageRows.length - 1]
  return {
    items: pageRows.map(row => ({ ...toSession(row), labels: row.labels })),
    total: count?.total ?? 0,
    nextCursor: more && last ? encodeSessionCursor({ sort: paging.sort, value: last.sort_key, id: last.id }) : null
  }
}

export interface SessionPatch {
  /** Merged into the stored metadata with jsonb `||`; keys whose value is null are removed. */
  metadata?: Record<string, unknown>
  /** true flags the session as recorded incorrectly (reason required), false clears flag and reason. */
  flaggedIncorrect?: boolean
  flagReason?: string
}

export type PatchSessionResult =
  | { status: 'updated', session: Session }
  | { status: 'not-found' }
  | { status: 'metadata-too-large', bytes: number }

/**
 * Applies a patch atomically: metadata merge, then the size check on the
 * merged result, then the flag. The size is that of the merged object as
 * compact JSON, the measure the recording path applies to create_session.
 * Flagging an already flagged session keeps its original flaggedAt and
 * updates the reason.
 */
export async function patchSession (pool: Pool, id: number, patch: SessionPatch, metadataMaxBytes: number): Promise<PatchSessionResult> {
  const metadata = patch.metadata ?? {}
  const removed = Object.keys(metadata).filter(key => metadata[key] === null)
  return withTransaction(pool, async client => {
    const { rows: [current] } = await client.query<{ merged: Record<string, unknown> }>(
      'select (metadata || $2::jsonb) - $3::text[] as merged from sessions where id = $1 for update',
      [id, JSON.stringify(metadata), removed])
    if (!current) return { status: 'not-found' }
    const bytes = Buffer.byteLength(JSON.stringify(current.merged))
    if (bytes > metadataMaxBytes) return { status: 'metadata-too-large', bytes }
    const flag = patch.flaggedIncorrect
    const { rows: [row] } = await client.query<SessionRow>(
      `update sessions set
         metadata = (metadata || $2::jsonb) - $3::text[],
         flagged_incorrect = coalesce($4::boolean, flagged_incorrect),
         flag_reason = case when $4::boolean is null then flag_reason when $4::boolean then $5::text else null end,
         flagged_at = case when $4::boolean is null then flagged_at when $4::boolean then coalesce(flagged_at, now()) else null end
       where id = $1
       returning ${SESSION_COLUMNS}`,
      [id, JSON.stringify(metadata), removed, flag ?? null, patch.flagReason ?? null])
    return { status: 'updated', session: toSession(row as SessionRow) }
  })
}

/** Flagged, ended sessions flagged at least `flaggedForSeconds` ago (all flagged ones when absent), oldest flag first. */
export async function findPurgeableSessions (db: Queryable, flaggedForSeconds?: number): Promise<Session[]> {
  const { rows } = await db.query<SessionRow>(
    `select ${SESSION_COLUMNS} from sessions
     where flagged_incorrect and destroyed_at is not null
       and ($1::float8 is null or flagged_at <= now() - make_interval(secs => $1::float8))
     order by flagged_at, id`,
    [flaggedForSeconds ?? null])
  return rows.map(toSession)
}

export interface PurgedCounts {
  sessions: number
  readings: number
  batches: number
}

/**
 * Deletes the given sessions with their readings and batch ledger in one
 * transaction, but only those still flagged and ended when it runs: a session
 * unflagged since it was listed survives.
 */
export async function purgeFlaggedSessions (pool: Pool, ids: number[]): Promise<PurgedCounts> {
  return withTransaction(pool, async client => {
    const { rows } = await client.query<{ id: number }>(
      `select id from sessions where id = any($1::bigint[]) and flagged_incorrect and destroyed_at is not null
       for update`, [ids])
    const locked = rows.map(row => row.id)
    if (locked.length === 0) return { sessions: 0, readings: 0, batches: 0 }
    const { rowCount: readings } = await client.query('delete from readings where session_id = any($1::bigint[])', [locked])
    const { rowCount: batches } = await client.query('delete from session_batches where session_id = any($1::bigint[])', [locked])
    const { rowCount: sessions } = await client.query('delete from sessions where id = any($1::bigint[])', [locked])
    return { sessions: sessions ?? 0, readings: readings ?? 0, batches: batches ?? 0 }
  })
}

/**
 * How many batches were written for a session and how many batch ids are
 * missing between its first batch id (sessions.first_batch_id, or a lower id
 * that arrived late) and the highest: the report's lost-batch rule.
 */
export async function findBatchSummary (db: Queryable, id: number): Promise<{ written: number, highestBatchId: number | null, missing: number }> {
  const { rows: [row] } = await db.query<{ written: number, highest: number | null, base: number | null }>(
    `select count(*)::int as written, max(batch_id) as highest,
       least((select first_batch_id from sessions where id = $1), min(batch_id)) as base
     from session_batches where session_id = $1`, [id])
  const written = row?.written ?? 0
  const highest = row?.highest ?? null
  return { written, highestBatchId: highest, missing: highest === null ? 0 : highest + 1 - (row?.base ?? 0) - written }
}

/** Sessions still recording, across every instance of the service. */
export async function countActiveSessions (db: Queryable): Promise<number> {
  const { rows: [row] } = await db.query<{ count: number }>('select count(*)::int as count from sessions where destroyed_at is null')
  return row?.count ?? 0
}
