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
  publicKey: string
  message: string
  expiresAt: Date
  expired: boolean
  consumed: boolean
}

interface ChallengeRow {
  nonce: string
  public_key: string
  message: string
  expires_at: Date
  expired: boolean
  consumed: boolean
}

const CHALLENGE_COLUMNS = `nonce, public_key, message, expires_at,
  expires_at <= now() as expired, consumed_at is not null as consumed`

const toChallenge = (row: ChallengeRow): StoredChallenge => ({
  nonce: row.nonce,
  publicKey: row.public_key,
  message: row.message,
  expiresAt: row.expires_at,
  expired: row.expired,
  consumed: row.consumed
})

/**
 * Stores a challenge unless `maxPending` unused, unexpired challenges already
 * exist over all keys; returns whether it was stored. Nothing is ever evicted
 * to make room, so nobody can invalidate another client's pending challenge.
 * Instances inserting at the same moment may each see room for one more, so
 * the bound can be passed by a few rows: it bounds storage, not exactly.
 */
export async function insertChallengeWithinBound (db: Queryable, challenge: NewChallenge, maxPending: number): Promise<boolean> {
  // The inner limit stops the count at the bound, so its cost does not grow with the table.
  const { rowCount } = await db.query(
    `insert into auth_challenges (nonce, public_key, message, issued_at, expires_at)
     select $1, $2, $3, $4, $5
     where (select count(*) from (
       select 1 from auth_challenges where consumed_at is null and expires_at > now() limit $6) pending) < $6`,
    [challenge.nonce, challenge.publicKey, challenge.message, challenge.issuedAt, challenge.expiresAt, maxPending])
  return rowCount === 1
}

/** The challenge with this nonce, whatever its key and state. */
export async function findChallengeByNonce (db: Queryable, nonce: string): Promise<StoredChallenge | undefined> {
  const { rows: [row] } = await db.query<ChallengeRow>(
    `select ${CHALLENGE_COLUMNS} from auth_challenges where nonce = $1`, [nonce])
  return row && toChallenge(row)
}

/** The key's newest unused, unexpired challenges, newest first. */
export async function findPendingChallenges (db: Queryable, publicKey: string, limit: number): Promise<StoredChallenge[]> {
  const { rows } = await db.query<ChallengeRow>(
    `select ${CHALLENGE_COLUMNS} from auth_challenges
     where public_key = $1 and consumed_at is null and expires_at > now()
     order by issued_at desc, nonce limit $2`,
    [publicKey, limit])
  return rows.map(toChallenge)
}

/** The key's newest used or expired challenges, newest first: what a refused replay is recognised by. */
export async function findSettledChallenges (db: Queryable, publicKey: string, limit: number): Promise<StoredChallenge[]> {
  const { rows } = await db.query<ChallengeRow>(
    `select ${CHALLENGE_COLUMNS} from auth_challenges
     where public_key = $1 and (consumed_at is not null or expires_at <= now())
     order by issued_at desc, nonce limit $2`,
    [publicKey, limit])
  return rows.map(toChallenge)
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
