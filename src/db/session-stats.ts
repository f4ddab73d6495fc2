import type { Queryable } from './queryable.js'

/** Sessions still recording, across every instance of the service. */
export async function countActiveSessions (db: Queryable): Promise<number> {
  const { rows: [row] } = await db.query<{ count: number }>('select count(*)::int as count from sessions where destroyed_at is null')
  return row?.count ?? 0
}
