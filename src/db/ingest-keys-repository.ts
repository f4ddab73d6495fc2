import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { ClientSource } from './pool.js'
import { withTransaction } from './pool.js'
import type { Queryable } from './queryable.js'

/** An ingest key as listed: never its secret. */
export interface IngestKey {
  id: number
  userId: number
  label: string | null
  createdAt: Date
  lastUsedAt: Date | null
}

/** A key just minted: the only time its secret (`key`) exists outside the phone. */
export interface MintedIngestKey extends IngestKey {
  key: string
}

export type MintIngestKeyResult =
  | { status: 'minted', key: MintedIngestKey }
  | { status: 'user_not_found' }
  /** Only beta testers record; a key for anyone else could never be used. */
  | { status: 'not_a_recorder' }
  | { status: 'limit_reached', limit: number }

/** Who a presented ingest key records for. */
export interface IngestKeyOwner {
  userId: number
  keyId: number
}

const sha256 = (value: string) => createHash('sha256').update(value).digest()
// The id is digits only, so the first "_" after it ends it even though base64url has "_" too.
const KEY_FORMAT = /^mik_([1-9]\d{0,15})_([A-Za-z0-9_-]{43})$/
const RECORDER_ROLE = 'BETATESTER'

interface KeyRow {
  id: number
  user_id: number
  label: string | null
  created_at: Date
  last_used_at: Date | null
}

const COLUMNS = 'id, user_id, label, created_at, last_used_at'

const toKey = (row: KeyRow): IngestKey =>
  ({ id: row.id, userId: row.user_id, label: row.label, createdAt: row.created_at, lastUsedAt: row.last_used_at })

/**
 * Mints a key "mik_<id>_<secret>" for a beta tester holding fewer than
 * `limit` keys. The user's row is locked while the keys are counted, so two
 * concurrent mints cannot both take the last place.
 */
export async function mintIngestKey (pool: ClientSource, userId: number, label: string | null, limit: number): Promise<MintIngestKeyResult> {
  return withTransaction(pool, async client => {
    const { rows: [user] } = await client.query<{ role: string }>('select role from users where id = $1 for update', [userId])
    if (!user) return { status: 'user_not_found' }
    if (user.role !== RECORDER_ROLE) return { status: 'not_a_recorder' }
    const { rows: [count] } = await client.query<{ held: number }>('select count(*)::int as held from ingest_keys where user_id = $1', [userId])
    if ((count?.held ?? 0) >= limit) return { status: 'limit_reached', limit }
    const secret = randomBytes(32).toString('base64url')
    const { rows: [row] } = await client.query<KeyRow>(
      `insert into ingest_keys (user_id, label, secret_sha256) values ($1, $2, $3) returning ${COLUMNS}`,
      [userId, label, sha256(secret)])
    const key = toKey(row as KeyRow)
    return { status: 'minted', key: { ...key, key: `mik_${key.id}_${secret}` } }
  })
}

/** The user's keys, oldest first, without secrets. */
export async function listIngestKeys (db: Queryable, userId: number): Promise<IngestKey[]> {
  const { rows } = await db.query<KeyRow>(`select ${COLUMNS} from ingest_keys where user_id = $1 order by id`, [userId])
  return rows.map(toKey)
}

/** Revokes (deletes) one of the user's keys; false when the user holds no such key. */
export async function revokeIngestKey (db: Queryable, userId: number, keyId: number): Promise<boolean> {
  const { rowCount } = await db.query('delete from ingest_keys where id = $1 and user_id = $2', [keyId, userId])
  return (rowCount ?? 0) > 0
}

/**
 * The beta tester a presented ingest key records for, or undefined when the
 * key is malformed, unknown or revoked, or its user is gone or does not
 * record. The secret is compared in constant time. Marks the key used at
 * most once a minute.
 */
export async function findUserByIngestKey (db: Queryable, key: string): Promise<IngestKeyOwner | undefined> {
  const match = KEY_FORMAT.exec(key)
  if (!match) return undefined
  const [, id, secret] = match as unknown as [string, string, string]
  const { rows: [row] } = await db.query<{ user_id: number, secret_sha256: Buffer, mark_used: boolean }>(
    `select k.user_id, k.secret_sha256,
       (k.last_used_at is null or k.last_used_at < now() - interval '1 minute') as mark_used
     from ingest_keys k join users u on u.id = k.user_id
     where k.id = $1 and u.role = $2`, [id, RECORDER_ROLE])
  if (!row || !timingSafeEqual(row.secret_sha256, sha256(secret))) return undefined
  if (row.mark_used) {
    // The condition again: of concurrent pushes only one writes.
    await db.query(
      `update ingest_keys set last_used_at = now()
       where id = $1 and (last_used_at is null or last_used_at < now() - interval '1 minute')`, [id])
  }
  return { userId: row.user_id, keyId: Number(id) }
}
