import type { DestroyReason } from '../../schemas/sessions.js'
import type { Queryable } from '../queryable.js'

/** The newest session recorded for one of the app's recordings (a recording outliving the TTL has several parts). */
export interface AppSessionPart {
  id: number
  createdAt: Date
  expiresAt: Date
  destroyedAt: Date | null
  destroyReason: DestroyReason | null
  /** 1 for the first session of the recording, then 2, 3, … */
  part: number
  /** The highest batch (message) id written to this part; null when none was. */
  highestBatchId: number | null
  /** Session metadata (a push session records where its accelerometer readings came from). */
  metadata: Record<string, unknown>
}

/** The newest part recorded for the app's recording `appSessionId`, if any. */
export async function findAppSessionPart (db: Queryable, userId: number, appSessionId: string): Promise<AppSessionPart | undefined> {
  const { rows: [row] } = await db.query<{ id: number, created_at: Date, expires_at: Date, destroyed_at: Date | null, destroy_reason: DestroyReason | null, part: number, metadata: Record<string, unknown>, highest_batch_id: number | null }>(
    `select id, created_at, expires_at, destroyed_at, destroy_reason, metadata,
       (select max(batch_id) from session_batches b where b.session_id = s.id) as highest_batch_id,
       (select count(*) from sessions p where p.user_id = s.user_id and p.app_session_id = s.app_session_id)::int as part
     from sessions s where user_id = $1 and app_session_id = $2
     order by id desc limit 1`, [userId, appSessionId])
  return row && {
    id: row.id,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    destroyedAt: row.destroyed_at,
    destroyReason: row.destroy_reason,
    part: row.part,
    highestBatchId: row.highest_batch_id,
    metadata: row.metadata
  }
}

/** The user's active session and the app recording it belongs to (null: a WebSocket phone's). */
export async function findActiveSessionOrigin (db: Queryable, userId: number): Promise<{ id: number, appSessionId: string | null } | undefined> {
  const { rows: [row] } = await db.query<{ id: number, app_session_id: string | null }>(
    'select id, app_session_id from sessions where user_id = $1 and destroyed_at is null', [userId])
  return row && { id: row.id, appSessionId: row.app_session_id }
}
