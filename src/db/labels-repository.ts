import type { SessionMetadata } from '../schemas/sessions.js'
import { isForeignKeyViolation } from './errors.js'
import { withTransaction, type ClientSource, type PoolClient } from './pool.js'
import type { Queryable } from './queryable.js'

/**
 * Interval labels and their vocabulary (migration 070). Times go in and come
 * out as integer microseconds since the epoch: an integer times an interval
 * is exact, where float seconds would round.
 */

/** A stored label; endUs null for an open one. */
export interface StoredLabel {
  id: number
  sessionId: number
  startUs: number
  endUs: number | null
  label: string
  note: string | null
  createdBy: number | null
  createdAt: Date
}

/** A session as the label rules see it, read in one statement. */
export interface LabelSessionFacts {
  userId: number
  metadata: SessionMetadata
  /** Not ended and not past its expiry. */
  active: boolean
  createdAtUs: number
  /** The database's clock at the read. */
  nowUs: number
  firstReadingUs: number | null
  lastReadingUs: number | null
  labelCount: number
}

export interface VocabularyEntry {
  name: string
  description: string | null
  createdAt: Date
}

const micros = (expression: string) => `(extract(epoch from ${expression}) * 1000000)::bigint`
const instant = (placeholder: string) => `(timestamptz 'epoch' + ${placeholder}::bigint * interval '1 microsecond')`

const LABEL_COLUMNS = `id, session_id, ${micros('start_at')} as start_us, ${micros('end_at')} as end_us, label, note, created_by, created_at`

interface LabelRow {
  id: number
  session_id: number
  start_us: number
  end_us: number | null
  label: string
  note: string | null
  created_by: number | null
  created_at: Date
}

const toLabel = (row: LabelRow): StoredLabel => ({
  id: row.id,
  sessionId: row.session_id,
  startUs: row.start_us,
  endUs: row.end_us,
  label: row.label,
  note: row.note,
  createdBy: row.created_by,
  createdAt: row.created_at
})

/** The first and last reading are two probes at the ends of the (session_id, ts) index. */
const FACTS_SQL = `
select s.user_id, s.metadata,
  (s.destroyed_at is null and s.expires_at > clock_timestamp()) as active,
  ${micros('s.created_at')} as created_us,
  ${micros('clock_timestamp()')} as now_us,
  ${micros('(select min(ts) from readings r where r.session_id = s.id)')} as first_us,
  ${micros('(select max(ts) from readings r where r.session_id = s.id)')} as last_us,
  (select count(*)::int from session_labels l where l.session_id = s.id) as label_count
from sessions s where s.id = $1`

interface FactsRow {
  user_id: number
  metadata: SessionMetadata
  active: boolean
  created_us: number
  now_us: number
  first_us: number | null
  last_us: number | null
  label_count: number
}

const toFacts = (row: FactsRow): LabelSessionFacts => ({
  userId: row.user_id,
  metadata: row.metadata,
  active: row.active,
  createdAtUs: row.created_us,
  nowUs: row.now_us,
  firstReadingUs: row.first_us,
  lastReadingUs: row.last_us,
  labelCount: row.label_count
})

/** The session's facts without a lock, for reading its labels; undefined when it does not exist. */
export async function readLabelSessionFacts (db: Queryable, sessionId: number): Promise<LabelSessionFacts | undefined> {
  const { rows: [row] } = await db.query<FactsRow>(FACTS_SQL, [sessionId])
  return row && toFacts(row)
}

/**
 * Locks the session's row and reads its facts: label writes of one session
 * take turns, so the overlap and count checks that follow hold until commit.
 * The lock also waits for a batch commit or an end in progress (both update
 * the row), so "active" and the readings are what they are at the write.
 */
export async function lockLabelSession (client: PoolClient, sessionId: number): Promise<LabelSessionFacts | undefined> {
  const { rows: [row] } = await client.query<FactsRow>(`${FACTS_SQL} for update of s`, [sessionId])
  return row && toFacts(row)
}

/** The session's labels that share an instant with [startUs, endUs) (endUs null: unbounded); open labels count as unbounded. */
export async function findTouchingLabels (db: Queryable, sessionId: number, startUs: number, endUs: number | null): Promise<StoredLabel[]> {
  const { rows } = await db.query<LabelRow>(
    `select ${LABEL_COLUMNS} from session_labels
     where session_id = $1 and ($3::bigint is null or start_at < ${instant('$3')})
       and (end_at is null or end_at > ${instant('$2')})
     order by start_at, id`, [sessionId, startUs, endUs])
  return rows.map(toLabel)
}

/** The session's labels in time order, or those that share an instant with [fromUs, toUs) when given. */
export async function listSessionLabels (db: Queryable, sessionId: number, range: { fromUs?: number | undefined, toUs?: number | undefined } = {}): Promise<StoredLabel[]> {
  const { rows } = await db.query<LabelRow>(
    `select ${LABEL_COLUMNS} from session_labels
     where session_id = $1 and ($3::bigint is null or start_at < ${instant('$3')})
       and ($2::bigint is null or end_at is null or end_at > ${instant('$2')})
     order by start_at, id`, [sessionId, range.fromUs ?? null, range.toUs ?? null])
  return rows.map(toLabel)
}

export async function findSessionLabel (db: Queryable, sessionId: number, labelId: number): Promise<StoredLabel | undefined> {
  const { rows: [row] } = await db.query<LabelRow>(`select ${LABEL_COLUMNS} from session_labels where id = $1 and session_id = $2`, [labelId, sessionId])
  return row && toLabel(row)
}

export interface LabelValues {
  startUs: number
  endUs: number | null
  label: string
  note: string | null
}

export async function insertLabel (db: Queryable, sessionId: number, values: LabelValues, createdBy: number | null): Promise<StoredLabel> {
  const { rows: [row] } = await db.query<LabelRow>(
    `insert into session_labels (session_id, start_at, end_at, label, note, created_by)
     values ($1, ${instant('$2')}, ${instant('$3')}, $4, $5, $6)
     returning ${LABEL_COLUMNS}`, [sessionId, values.startUs, values.endUs, values.label, values.note, createdBy])
  return toLabel(row as LabelRow)
}

/** Sets an open label's end. */
export async function closeLabel (db: Queryable, labelId: number, endUs: number): Promise<void> {
  await db.query(`update session_labels set end_at = ${instant('$2')} where id = $1 and end_at is null`, [labelId, endUs])
}

export async function updateLabel (db: Queryable, labelId: number, values: LabelValues): Promise<StoredLabel> {
  const { rows: [row] } = await db.query<LabelRow>(
    `update session_labels set start_at = ${instant('$2')}, end_at = ${instant('$3')}, label = $4, note = $5
     where id = $1 returning ${LABEL_COLUMNS}`, [labelId, values.startUs, values.endUs, values.label, values.note])
  return toLabel(row as LabelRow)
}

/** Deletes one label of the session; false when the session holds no such label. */
export async function deleteSessionLabel (db: Queryable, sessionId: number, labelId: number): Promise<boolean> {
  const { rowCount } = await db.query('delete from session_labels where id = $1 and session_id = $2', [labelId, sessionId])
  return (rowCount ?? 0) > 0
}

export async function isVocabularyName (db: Queryable, name: string): Promise<boolean> {
  const { rowCount } = await db.query('select 1 from label_vocabulary where name = $1', [name])
  return (rowCount ?? 0) > 0
}

/** The vocabulary, by name. */
export async function listVocabulary (db: Queryable): Promise<VocabularyEntry[]> {
  const { rows } = await db.query<{ name: string, description: string | null, created_at: Date }>(
    'select name, description, created_at from label_vocabulary order by name')
  return rows.map(row => ({ name: row.name, description: row.description, createdAt: row.created_at }))
}

export type AddVocabularyResult =
  | { status: 'added', entry: VocabularyEntry }
  | { status: 'exists' }
  | { status: 'full', limit: number }

/**
 * Adds a name unless the vocabulary holds `limit` already. The table is
 * locked against other writers (readers go on) while it is counted, so two
 * concurrent adds cannot both take the last place.
 */
export async function addVocabularyName (pool: ClientSource, name: string, description: string | null, limit: number): Promise<AddVocabularyResult> {
  return withTransaction(pool, async client => {
    await client.query('lock table label_vocabulary in share row exclusive mode')
    const { rows: [count] } = await client.query<{ held: number }>('select count(*)::int as held from label_vocabulary')
    if ((count?.held ?? 0) >= limit) return { status: 'full', limit }
    const { rows: [row] } = await client.query<{ name: string, description: string | null, created_at: Date }>(
      `insert into label_vocabulary (name, description) values ($1, $2)
       on conflict (name) do nothing returning name, description, created_at`, [name, description])
    if (!row) return { status: 'exists' }
    return { status: 'added', entry: { name: row.name, description: row.description, createdAt: row.created_at } }
  })
}

/** Removes a name; 'in_use' while any label carries it (the foreign key refuses), so no label loses its name. */
export async function removeVocabularyName (db: Queryable, name: string): Promise<'removed' | 'not_found' | 'in_use'> {
  try {
    const { rowCount } = await db.query('delete from label_vocabulary where name = $1', [name])
    return (rowCount ?? 0) > 0 ? 'removed' : 'not_found'
  } catch (err) {
    if (isForeignKeyViolation(err)) return 'in_use'
    throw err
  }
}
