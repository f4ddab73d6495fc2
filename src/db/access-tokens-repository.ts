import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import type { Role } from '../schemas/users.js'
import type { Queryable } from './queryable.js'

export interface IssuedToken {
  accessToken: string
  expiresAt: Date
}

export interface TokenOwner {
  userId: number
  role: Role
  tokenId: string
}

const sha256 = (value: string) => createHash('sha256').update(value).digest()
const TOKEN_FORMAT = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.([A-Za-z0-9_-]{43})$/

/** Issues an opaque token "<uuid>.<secret>"; the database keeps only sha256(secret). */
export async function issueAccessToken (db: Queryable, userId: number, ttlSeconds: number): Promise<IssuedToken> {
  const id = randomUUID()
  const secret = randomBytes(32).toString('base64url')
  const { rows: [row] } = await db.query<{ expires_at: Date }>(
    `insert into access_tokens (id, user_id, secret_sha256, expires_at)
     values ($1, $2, $3, now() + make_interval(secs => $4)) returning expires_at`,
    [id, userId, sha256(secret), ttlSeconds])
  return { accessToken: `${id}.${secret}`, expiresAt: (row as { expires_at: Date }).expires_at }
}

/**
 * Resolves a presented token to its user, or undefined when it is malformed,
 * unknown, expired or its user is gone. The secret is compared in constant time.
 */
export async function verifyAccessToken (db: Queryable, token: string): Promise<TokenOwner | undefined> {
  const match = TOKEN_FORMAT.exec(token)
  if (!match) return undefined
  const [, id, secret] = match as unknown as [string, string, string]
  const { rows: [row] } = await db.query<{ user_id: number, role: Role, secret_sha256: Buffer }>(
    `select t.user_id, u.role, t.secret_sha256 from access_tokens t join users u on u.id = t.user_id
     where t.id = $1 and t.expires_at > now()`, [id])
  if (!row || !timingSafeEqual(row.secret_sha256, sha256(secret))) return undefined
  return { userId: row.user_id, role: row.role, tokenId: id }
}

export async function deleteExpiredAccessTokens (db: Queryable): Promise<number> {
  const { rowCount } = await db.query('delete from access_tokens where expires_at <= now()')
  return rowCount ?? 0
}
