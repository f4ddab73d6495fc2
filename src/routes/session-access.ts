import type { TokenOwner } from '../db/access-tokens-repository.js'
import type { Queryable } from '../db/queryable.js'
import { findSessionById } from '../db/sessions/sessions-repository.js'
import { notFound } from '../errors.js'
import type { Session } from '../schemas/sessions.js'

/**
 * The session if the caller may read it (its owner or an admin). Someone
 * else's session gets the same 404 as a missing one, so ids do not reveal
 * which sessions exist.
 */
export async function findVisibleSession (db: Queryable, auth: TokenOwner | null, id: number): Promise<Session> {
  const found = await findSessionById(db, id)
  if (!found || !auth || (auth.role !== 'ADMIN' && found.userId !== auth.userId)) {
    throw notFound(`Session ${id} does not exist`)
  }
  return found
}
