import type { CreateUserInput, Role, User } from '../schemas/users.js'
import type { Pool } from './pool.js'
import { withTransaction } from './pool.js'
import type { Queryable } from './queryable.js'

interface UserRow {
  id: number
  name: string
  email: string
  public_key: string
  role: Role
  created_at: Date
}

const COLUMNS = 'id, name, email, public_key, role, created_at'

function toUser (row: UserRow): User {
  return {
    id: row.id,
    name: row.name,
    email: row.email,
    publicKey: row.public_key,
    role: row.role,
    createdAt: row.created_at.toISOString()
  }
}

export async function insertUser (db: Queryable, input: CreateUserInput): Promise<User> {
  const { rows: [row] } = await db.query<UserRow>(
    `insert into users (name, email, public_key, role) values ($1, $2, $3, $4) returning ${COLUMNS}`,
    [input.name, input.email, input.publicKey, input.role])
  return toUser(row as UserRow)
}

export async function listUsers (db: Queryable, take: number, skip: number): Promise<{ items: User[], total: number }> {
  const [{ rows }, { rows: [count] }] = await Promise.all([
    db.query<UserRow>(`select ${COLUMNS} from users order by id limit $1 offset $2`, [take, skip]),
    db.query<{ total: number }>('select count(*)::int as total from users')
  ])
  return { items: rows.map(toUser), total: count?.total ?? 0 }
}

export async function findUserById (db: Queryable, id: number): Promise<User | undefined> {
  const { rows: [row] } = await db.query<UserRow>(`select ${COLUMNS} from users where id = $1`, [id])
  return row && toUser(row)
}

export async function findUserByPublicKey (db: Queryable, publicKey: string): Promise<User | undefined> {
  const { rows: [row] } = await db.query<UserRow>(`select ${COLUMNS} from users where public_key = $1`, [publicKey])
  return row && toUser(row)
}

export async function findUserByEmail (db: Queryable, email: string): Promise<User | undefined> {
  const { rows: [row] } = await db.query<UserRow>(`select ${COLUMNS} from users where lower(email) = lower($1)`, [email])
  return row && toUser(row)
}

export interface DeletedCounts {
  users: number
  sessions: number
  readings: number
  accessTokens: number
}

/**
 * Deletes a user with their tokens, sessions, batch ledger and readings in one
 * transaction. Readings carry no foreign key, so they are deleted explicitly.
 * Returns undefined when no such user exists.
 */
export async function deleteUser (pool: Pool, id: number): Promise<DeletedCounts | undefined> {
  return withTransaction(pool, async client => {
    const { rowCount: found } = await client.query('select 1 from users where id = $1 for update', [id])
    if (!found) return undefined
    // Locking the sessions first waits for any batch transaction still writing to them;
    // otherwise its readings could commit after the delete below and outlive their session.
    const { rows } = await client.query<{ id: number }>('select id from sessions where user_id = $1 order by id for update', [id])
    const { rowCount: readings } = await client.query(
      'delete from readings where session_id = any($1::bigint[])', [rows.map(row => row.id)])
    const { rowCount: sessions } = await client.query('delete from sessions where user_id = $1', [id])
    const { rowCount: accessTokens } = await client.query('delete from access_tokens where user_id = $1', [id])
    const { rowCount: users } = await client.query('delete from users where id = $1', [id])
    return { users: users ?? 0, sessions: sessions ?? 0, readings: readings ?? 0, accessTokens: accessTokens ?? 0 }
  })
}

/**
 * The user stored under any of the given spellings of one key, preferring the
 * first (the canonical form) when more than one matches.
 */
export async function findUserByPublicKeyForms (db: Queryable, forms: string[]): Promise<User | undefined> {
  const { rows: [row] } = await db.query<UserRow>(
    `select ${COLUMNS} from users where public_key = any($1::text[])
     order by array_position($1::text[], public_key) limit 1`, [forms])
  return row && toUser(row)
}
