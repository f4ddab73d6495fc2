import type { ReportSummary } from '../../schemas/session-report.js'
import type { DestroyReason, Integrity, SessionMetadata } from '../../schemas/sessions.js'
import type { Queryable } from '../queryable.js'

/** The part of a session the recording protocol talks about. */
export interface SessionState {
  id: number
  userId: number
  createdAt: Date
  expiresAt: Date
}

export interface EndedSession {
  id: number
  userId: number
  destroyedAt: Date
  reason: DestroyReason
  totalSensorReadingsWritten: number
  integrity: Integrity
  /** The completeness report in short; null until it has been computed. */
  report: ReportSummary | null
}

interface EndedRow {
  id: number
  user_id: number
  destroyed_at: Date
  destroy_reason: DestroyReason
  total_sensor_readings_written: number
  integrity: Integrity
  summary?: ReportSummary | null
}

const ENDED_COLUMNS = 'id, user_id, destroyed_at, destroy_reason, total_sensor_readings_written, integrity'

const toEnded = (row: EndedRow): EndedSession => ({
  id: row.id,
  userId: row.user_id,
  destroyedAt: row.destroyed_at,
  reason: row.destroy_reason,
  totalSensorReadingsWritten: row.total_sensor_readings_written,
  integrity: row.integrity,
  report: row.summary ?? null
})

/** Where a session's batches come from, for push clients (Sensor Logger) that name their own recording. */
export interface SessionOrigin {
  /** The app's own id of the recording; push messages find their session by it. */
  appSessionId?: string
  /** The first batch id of the session: lost batches are counted from it. */
  firstBatchId?: number
}

/**
 * The user's active session, or a new one. The partial unique index on
 * (user_id) where destroyed_at is null makes "one active session per user"
 * hold across instances: a concurrent insert loses the race and resumes the
 * winner's session. An active session past its expiry is ended first, so a
 * phone never resumes a session the reaper has not reached yet.
 */
export async function createOrResumeSession (db: Queryable, userId: number, ttlSeconds: number, metadata: SessionMetadata, origin: SessionOrigin = {}): Promise<{ session: SessionState, created: boolean, expired: EndedSession[] }> {
  const expired = await endExpiredSessions(db, userId)
  for (let attempt = 0; attempt < 3; attempt++) {
    const { rows: [inserted] } = await db.query<{ id: number, user_id: number, created_at: Date, expires_at: Date }>(
      `insert into sessions (user_id, expires_at, metadata, app_session_id, first_batch_id)
       values ($1, now() + make_interval(secs => $2), $3, $4, $5)
       on conflict (user_id) where destroyed_at is null do nothing
       returning id, user_id, created_at, expires_at`, [userId, ttlSeconds, metadata, origin.appSessionId ?? null, origin.firstBatchId ?? 0])
    if (inserted) {
      return { session: { id: inserted.id, userId: inserted.user_id, createdAt: inserted.created_at, expiresAt: inserted.expires_at }, created: true, expired }
    }
    const active = await findActiveSession(db, userId)
    if (active) return { session: active, created: false, expired }
    // The active session ended between the two statements; try again.
  }
  throw new Error(`Could not create or resume a session for user ${userId}`)
}

export async function findActiveSession (db: Queryable, userId: number): Promise<SessionState | undefined> {
  const { rows: [row] } = await db.query<{ id: number, user_id: number, created_at: Date, expires_at: Date }>(
    'select id, user_id, created_at, expires_at from sessions where user_id = $1 and destroyed_at is null', [userId])
  return row && { id: row.id, userId: row.user_id, createdAt: row.created_at, expiresAt: row.expires_at }
}

/**
 * Ends an active session. The row lock waits for any batch transaction in
 * progress, so the final total includes every batch committed before it.
 * Returns undefined when the session is not active (already ended, past its
 * expiry and waiting for the reaper, or not this user's when userId is given).
 */
export async function destroySession (db: Queryable, sessionId: number, reason: DestroyReason, totalSent?: number, userId?: number): Promise<EndedSession | undefined> {
  const { rows: [row] } = await db.query<EndedRow>(
    `update sessions set
       destroyed_at = now(),
       destroy_reason = $2,
       report_pending = true,
       total_sensor_readings_sent = $3,
       integrity = case when $3::bigint is null then 'unreported'
                        when $3::bigint = total_sensor_readings_written then 'ok'
                        else 'mismatch' end
     where id = $1 and destroyed_at is null and expires_at > now() and ($4::bigint is null or user_id = $4)
     returning ${ENDED_COLUMNS}`, [sessionId, reason, totalSent ?? null, userId ?? null])
  return row && toEnded(row)
}

/**
 * Ends sessions past their expiry (all of them, or one user's). Safe with
 * several instances: skip locked means two reapers never wait on each other,
 * and the update's own condition means each session is ended exactly once.
 * The end time is the expiry itself: nothing can be written after it.
 */
export async function endExpiredSessions (db: Queryable, userId?: number, limit = 1000): Promise<EndedSession[]> {
  const { rows } = await db.query<EndedRow>(
    `update sessions set destroyed_at = expires_at, destroy_reason = 'expired', integrity = 'unreported', report_pending = true
     where id in (
       select id from sessions
       where destroyed_at is null and expires_at <= now() and ($1::bigint is null or user_id = $1)
       order by expires_at
       limit $2
       for update skip locked)
     and destroyed_at is null
     returning ${ENDED_COLUMNS}`, [userId ?? null, limit])
  return rows.map(toEnded)
}

/** Of the given sessions, those that have ended (by any instance, for any reason). */
export async function findEndedSessions (db: Queryable, sessionIds: number[]): Promise<EndedSession[]> {
  if (sessionIds.length === 0) return []
  const { rows } = await db.query<EndedRow>(
    `select ${ENDED_COLUMNS}, (select summary from session_reports where session_id = s.id) as summary
     from sessions s where id = any($1::bigint[]) and destroyed_at is not null`, [sessionIds])
  return rows.map(toEnded)
}

/**
 * Of the given sessions, those that ended (by any instance, for any reason)
 * and those that no longer exist (deleted with their user).
 */
export async function findGoneSessions (db: Queryable, sessionIds: number[]): Promise<{ ended: EndedSession[], deleted: number[] }> {
  if (sessionIds.length === 0) return { ended: [], deleted: [] }
  const { rows } = await db.query<EndedRow & { held_id: number }>(
    `select held.id as held_id, s.id, s.user_id, s.destroyed_at, s.destroy_reason, s.total_sensor_readings_written, s.integrity, r.summary
     from unnest($1::bigint[]) as held(id) left join sessions s on s.id = held.id
     left join session_reports r on r.session_id = s.id
     where s.id is null or s.destroyed_at is not null`, [sessionIds])
  return {
    ended: rows.filter(row => row.id !== null).map(toEnded),
    deleted: rows.filter(row => row.id === null).map(row => row.held_id)
  }
}
