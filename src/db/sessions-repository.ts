import type { DestroyReason, Integrity, Session, SessionMetadata } from '../schemas/sessions.js'
import type { Queryable } from './queryable.js'

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
}

export const SESSION_COLUMNS = `id, user_id, created_at, expires_at, destroyed_at, destroy_reason,
  total_sensor_readings_written, total_sensor_readings_sent, integrity, metadata,
  flagged_incorrect, flag_reason, flagged_at`

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
    flaggedAt: row.flagged_at?.toISOString() ?? null
  }
}

export async function findSessionById (db: Queryable, id: number): Promise<Session | undefined> {
  const { rows: [row] } = await db.query<SessionRow>(`select ${SESSION_COLUMNS} from sessions where id = $1`, [id])
  return row && toSession(row)
}
