import type { Queryable } from './queryable.js'

export interface NewChallenge {
  nonce: string
  publicKey: string
  message: string
  issuedAt: Date
  expiresAt: Date
}

/** A stored challenge with its state judged by the database clock, which every instance shares. */
export interface StoredChallenge {
  nonce: string
  message: string
  expiresAt: Date
  expired: boolean
  consumed: boolean
}

interface ChallengeRow {
  nonce: string
  message: string
  expires_at: Date
  expired: boolean
  consumed: boolean
}

/**
 * Stores a challenge and drops the key's oldest ones beyond `keepPerKey`, so
 * that verification, which tries each recent challenge of a key, stays cheap.
 */
export async function insertChallenge (db: Queryable, challenge: NewChallenge, keepPerKey: number): Promise<void> {
  // Both statements see the table as it was before the insert, so offset
  // keepPerKey - 1 keeps that many older rows next to the new one.
  await db.query(
    `with inserted as (
       insert into auth_challenges (nonce, public_key, message, issued_at, expires_at)
       values ($1, $2, $3, $4, $5)
     )
     delete from auth_challenges where nonce in (
       select nonce from auth_challenges where public_key = $2
       order by issued_at desc, nonce offset $6)`,
    [challenge.nonce, challenge.publicKey, challenge.message, challenge.issuedAt, challenge.expiresAt, keepPerKey - 1])
}

/** The key's most recent challenges, newest first, including used and expired ones. */
export async function findRecentChallenges (db: Queryable, publicKey: string, limit: number): Promise<StoredChallenge[]> {
  const { rows } = await db.query<ChallengeRow>(
    `select nonce, message, expires_at, expires_at <= now() as expired, consumed_at is not null as consumed
     from auth_challenges where public_key = $1 order by issued_at desc, nonce limit $2`,
    [publicKey, limit])
  return rows.map(row => ({ nonce: row.nonce, message: row.message, expiresAt: row.expires_at, expired: row.expired, consumed: row.consumed }))
}

/**
 * Marks a challenge used if it is still unused and unexpired, in one
 * statement: when two instances race, the row lock lets exactly one of them
 * see the row. Returns whether this caller consumed it.
 */
export async function consumeChallenge (db: Queryable, nonce: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `update auth_challenges set consumed_at = now()
     where nonce = $1 and consumed_at is null and expires_at > now()
     returning nonce`,
    [nonce])
  return rowCount === 1
}

/** Deletes challenges that expired more than `retainSeconds` ago; returns how many. */
export async function deleteStaleChallenges (db: Queryable, retainSeconds: number): Promise<number> {
  const { rowCount } = await db.query(
    'delete from auth_challenges where expires_at < now() - make_interval(secs => $1)', [retainSeconds])
  return rowCount ?? 0
}
