import type pg from 'pg'

/** What the phones saw acknowledged, per session. */
export type AckedBySession = Map<number, number>

export interface Verification {
  ok: boolean
  sessions: number
  ackedReadings: number
  storedReadings: number
  /** Sum of sessions.total_sensor_readings_written. */
  sessionTotals: number
  /** Sessions whose stored count, ledger total and acked count are not all equal. */
  mismatchedSessions: number
  /** (session_id, ts, sensor) stored more than once. */
  duplicateReadings: number
  problems: string[]
}

/**
 * Every acknowledged reading is stored exactly once: per session, the acked
 * count equals count(*) in readings and sessions.total_sensor_readings_written,
 * and no (session, timestamp, sensor) appears twice.
 */
export async function verifySessions (pool: pg.Pool, acked: AckedBySession): Promise<Verification> {
  const ids = [...acked.keys()]
  const stored = new Map<number, number>()
  const totals = new Map<number, number>()
  let duplicateReadings = 0
  if (ids.length > 0) {
    const [counts, sessions, duplicates] = await Promise.all([
      pool.query<{ session_id: string, n: string }>(
        'select session_id, count(*) as n from readings where session_id = any($1::bigint[]) group by session_id', [ids]),
      pool.query<{ id: string, total: string }>(
        'select id, total_sensor_readings_written as total from sessions where id = any($1::bigint[])', [ids]),
      pool.query<{ n: string }>(`select coalesce(sum(n - 1), 0) as n from (
        select count(*) as n from readings where session_id = any($1::bigint[])
        group by session_id, ts, sensor having count(*) > 1) d`, [ids])
    ])
    for (const row of counts.rows) stored.set(Number(row.session_id), Number(row.n))
    for (const row of sessions.rows) totals.set(Number(row.id), Number(row.total))
    duplicateReadings = Number(duplicates.rows[0]?.n ?? 0)
  }
  const problems: string[] = []
  let ackedReadings = 0
  let storedReadings = 0
  let sessionTotals = 0
  let mismatchedSessions = 0
  for (const [id, count] of acked) {
    const inTable = stored.get(id) ?? 0
    const total = totals.get(id)
    ackedReadings += count
    storedReadings += inTable
    sessionTotals += total ?? 0
    if (inTable !== count || total !== count) {
      mismatchedSessions++
      if (problems.length < 10) problems.push(`session ${id}: acked ${count}, stored ${inTable}, total_sensor_readings_written ${total ?? 'missing'}`)
    }
  }
  if (duplicateReadings > 0) problems.push(`${duplicateReadings} duplicate readings`)
  return {
    ok: mismatchedSessions === 0 && duplicateReadings === 0,
    sessions: ids.length,
    ackedReadings,
    storedReadings,
    sessionTotals,
    mismatchedSessions,
    duplicateReadings,
    problems
  }
}
