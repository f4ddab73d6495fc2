import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { findUserByIngestKey } from '../../src/db/ingest-keys-repository.js'
import { MAX_INGEST_KEYS_PER_USER } from '../../src/schemas/ingest-keys.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'

const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl)
const admin = await createUserWithToken(app, 'ADMIN')

const BIN = path.resolve(import.meta.dirname, '../../bin/motion-ingest.js')

async function mint (token: string, payload?: Record<string, unknown>) {
  const response = await app.inject({ method: 'POST', url: '/me/ingest-keys', headers: bearer(token), ...(payload === undefined ? {} : { payload }) })
  return { statusCode: response.statusCode, body: response.json() }
}

async function mintedKey (token: string, label?: string): Promise<{ id: number, key: string }> {
  const { statusCode, body } = await mint(token, label === undefined ? undefined : { label })
  expect(statusCode, JSON.stringify(body)).toBe(201)
  return body
}

const TEST_PUSH = JSON.stringify({ messageId: 0, sessionId: 'a', deviceId: 'd', payload: [{ name: 'test', time: 1, values: {} }] })
const pushWithKey = (key: string) =>
  app.inject({ method: 'POST', url: `/ingest/sensor-logger/${encodeURIComponent(key)}`, headers: { 'content-type': 'application/json' }, payload: TEST_PUSH })

describe('minting, listing and revoking one\'s own keys', () => {
  it('shows the key once with its push URL, stores only its hash, and lists it without the secret', async () => {
    const tester = await createUserWithToken(app)
    const { statusCode, body } = await mint(tester.token, { label: ' Pixel 9 ' })
    expect(statusCode).toBe(201)
    expect(body).toEqual({ id: expect.any(Number), label: 'Pixel 9', createdAt: expect.any(String), key: expect.stringMatching(/^mik_\d+_[A-Za-z0-9_-]{43}$/), pushUrl: `/ingest/sensor-logger/${body.key}` })
    const secret = (body.key as string).slice(`mik_${body.id}_`.length)

    const { rows: [row] } = await app.db.query('select * from ingest_keys where id = $1', [body.id])
    expect(row.secret_sha256).toEqual(createHash('sha256').update(secret).digest())
    expect(JSON.stringify(row)).not.toContain(secret)

    const noBody = await mint(tester.token)
    expect(noBody.statusCode).toBe(201)
    expect(noBody.body.label).toBeNull()

    const list = await app.inject({ url: '/me/ingest-keys', headers: bearer(tester.token) })
    expect(list.statusCode).toBe(200)
    expect(list.json()).toEqual({
      items: [
        { id: body.id, label: 'Pixel 9', createdAt: body.createdAt, lastUsedAt: null },
        { id: noBody.body.id, label: null, createdAt: noBody.body.createdAt, lastUsedAt: null }
      ]
    })
    expect(list.body).not.toContain(secret)
  })

  it('refuses a bad label and unknown fields with 400', async () => {
    const tester = await createUserWithToken(app)
    expect((await mint(tester.token, { label: '' })).statusCode).toBe(400)
    expect((await mint(tester.token, { label: 'x'.repeat(101) })).statusCode).toBe(400)
    expect((await mint(tester.token, { label: 'a\u0000b' })).statusCode).toBe(400)
    expect((await mint(tester.token, { key: 'mine' })).statusCode).toBe(400)
  })

  it('revokes a key: its pushes get the same 401 as an unknown key\'s, and it is no longer listed', async () => {
    const tester = await createUserWithToken(app)
    const kept = await mintedKey(tester.token, 'kept')
    const revoked = await mintedKey(tester.token, 'revoked')
    expect((await pushWithKey(revoked.key)).statusCode).toBe(200)

    const deleted = await app.inject({ method: 'DELETE', url: `/me/ingest-keys/${revoked.id}`, headers: bearer(tester.token) })
    expect(deleted.statusCode).toBe(200)
    expect(deleted.json()).toEqual({ id: revoked.id, revoked: true })
    const again = await app.inject({ method: 'DELETE', url: `/me/ingest-keys/${revoked.id}`, headers: bearer(tester.token) })
    expect(again.statusCode).toBe(404)

    const refused = await pushWithKey(revoked.key)
    const unknown = await pushWithKey(`mik_${revoked.id + 1000}_${'A'.repeat(43)}`)
    expect(refused.statusCode).toBe(401)
    expect(refused.json()).toEqual(unknown.json())
    expect(refused.json()).toEqual({ error: 'UNAUTHORIZED', message: 'The ingest key is invalid or has been revoked' })
    expect((await pushWithKey(kept.key)).statusCode).toBe(200)
    const list = (await app.inject({ url: '/me/ingest-keys', headers: bearer(tester.token) })).json()
    expect(list.items.map((item: { id: number }) => item.id)).toEqual([kept.id])
  })

  it('cannot revoke another user\'s key: 404, and that key still works', async () => {
    const owner = await createUserWithToken(app)
    const stranger = await createUserWithToken(app)
    const key = await mintedKey(owner.token)
    const response = await app.inject({ method: 'DELETE', url: `/me/ingest-keys/${key.id}`, headers: bearer(stranger.token) })
    expect(response.statusCode).toBe(404)
    expect((await pushWithKey(key.key)).statusCode).toBe(200)
  })

  it('is for beta testers only: an admin records nothing and gets 403, a stranger 401', async () => {
    expect((await mint(admin.token)).statusCode).toBe(403)
    expect((await app.inject({ url: '/me/ingest-keys', headers: bearer(admin.token) })).statusCode).toBe(403)
    expect((await app.inject({ method: 'POST', url: '/me/ingest-keys' })).statusCode).toBe(401)
  })
})

describe('the bound per user', () => {
  it(`holds at most ${MAX_INGEST_KEYS_PER_USER} keys (409 beyond), leaves other users alone, and frees a place on revoke`, async () => {
    const tester = await createUserWithToken(app)
    const other = await createUserWithToken(app)
    const keys = []
    for (let i = 0; i < MAX_INGEST_KEYS_PER_USER; i++) keys.push(await mintedKey(tester.token, `phone ${i}`))
    const refused = await mint(tester.token)
    expect(refused).toEqual({ statusCode: 409, body: { error: 'INGEST_KEY_LIMIT', message: expect.stringContaining(`${MAX_INGEST_KEYS_PER_USER}`) } })
    // An admin cannot exceed it either.
    expect((await app.inject({ method: 'POST', url: `/users/${tester.user.id}/ingest-keys`, headers: bearer(admin.token) })).statusCode).toBe(409)

    await mintedKey(other.token)
    await app.inject({ method: 'DELETE', url: `/me/ingest-keys/${keys[0]?.id}`, headers: bearer(tester.token) })
    await mintedKey(tester.token)
    expect((await mint(tester.token)).statusCode).toBe(409)
  })

  it('holds under concurrent mints: exactly the bound succeeds', async () => {
    const tester = await createUserWithToken(app)
    const answers = await Promise.all(Array.from({ length: MAX_INGEST_KEYS_PER_USER + 6 }, () => mint(tester.token)))
    expect(answers.filter(answer => answer.statusCode === 201)).toHaveLength(MAX_INGEST_KEYS_PER_USER)
    expect(answers.filter(answer => answer.statusCode === 409)).toHaveLength(6)
    const { rows: [row] } = await app.db.query('select count(*)::int as n from ingest_keys where user_id = $1', [tester.user.id])
    expect(row.n).toBe(MAX_INGEST_KEYS_PER_USER)
  })
})

describe('an admin managing a user\'s keys', () => {
  it('mints, lists and revokes for a beta tester; 404 for an unknown user, 409 for an admin', async () => {
    const tester = await createUserWithToken(app)
    const minted = await app.inject({ method: 'POST', url: `/users/${tester.user.id}/ingest-keys`, headers: bearer(admin.token), payload: { label: 'lab phone' } })
    expect(minted.statusCode).toBe(201)
    const key = minted.json()
    expect(key.pushUrl).toBe(`/ingest/sensor-logger/${key.key}`)
    expect(await findUserByIngestKey(app.db, key.key)).toEqual({ userId: tester.user.id, keyId: key.id })

    const list = await app.inject({ url: `/users/${tester.user.id}/ingest-keys`, headers: bearer(admin.token) })
    expect(list.json().items).toEqual([{ id: key.id, label: 'lab phone', createdAt: key.createdAt, lastUsedAt: expect.any(String) }])
    // The tester sees the key an admin minted for them.
    expect((await app.inject({ url: '/me/ingest-keys', headers: bearer(tester.token) })).json().items).toHaveLength(1)

    const revoked = await app.inject({ method: 'DELETE', url: `/users/${tester.user.id}/ingest-keys/${key.id}`, headers: bearer(admin.token) })
    expect(revoked.statusCode).toBe(200)
    expect(await findUserByIngestKey(app.db, key.key)).toBeUndefined()
    // A key id under the wrong user is not found.
    const other = await createUserWithToken(app)
    const otherKey = await mintedKey(other.token)
    expect((await app.inject({ method: 'DELETE', url: `/users/${tester.user.id}/ingest-keys/${otherKey.id}`, headers: bearer(admin.token) })).statusCode).toBe(404)

    expect((await app.inject({ method: 'POST', url: '/users/999999999/ingest-keys', headers: bearer(admin.token) })).statusCode).toBe(404)
    expect((await app.inject({ url: '/users/999999999/ingest-keys', headers: bearer(admin.token) })).statusCode).toBe(404)
    const forAdmin = await app.inject({ method: 'POST', url: `/users/${admin.user.id}/ingest-keys`, headers: bearer(admin.token) })
    expect(forAdmin.statusCode).toBe(409)
    expect(forAdmin.json().error).toBe('NOT_A_RECORDER')
  })

  it('is for admins only', async () => {
    const tester = await createUserWithToken(app)
    expect((await app.inject({ method: 'POST', url: `/users/${tester.user.id}/ingest-keys`, headers: bearer(tester.token) })).statusCode).toBe(403)
    expect((await app.inject({ url: `/users/${tester.user.id}/ingest-keys`, headers: bearer(tester.token) })).statusCode).toBe(403)
  })
})

describe('an ingest key records and does nothing else', () => {
  it('is refused as a Bearer token on read routes and on the key routes', async () => {
    const tester = await createUserWithToken(app)
    const { key } = await mintedKey(tester.token)
    for (const url of ['/sessions', '/me', '/me/ingest-keys', `/users/${tester.user.id}/ingest-keys`]) {
      const response = await app.inject({ url, headers: bearer(key) })
      expect(response.statusCode, url).toBe(401)
    }
    expect((await app.inject({ method: 'POST', url: '/me/ingest-keys', headers: bearer(key) })).statusCode).toBe(401)
    // Nor over the WebSocket's query token or the Bearer push route.
    expect((await app.inject({ method: 'POST', url: '/ingest/sensor-logger', headers: { ...bearer(key), 'content-type': 'application/json' }, payload: TEST_PUSH })).statusCode).toBe(401)
    // And an access token is not an ingest key.
    expect((await pushWithKey(tester.token)).statusCode).toBe(401)
  })
})

describe('findUserByIngestKey', () => {
  it('finds the beta tester, and nothing for a malformed, wrong, revoked or deleted user\'s key, or a user who no longer records', async () => {
    const tester = await createUserWithToken(app)
    const { id, key } = await mintedKey(tester.token)
    expect(await findUserByIngestKey(app.db, key)).toEqual({ userId: tester.user.id, keyId: id })
    const wrongSecret = key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A')
    for (const bad of ['', 'mik_', `mik_${id}`, `mik_${id}_short`, wrongSecret, `${key}x`, `mik_0${id}_${key.split('_').slice(2).join('_')}`, `mik_99999999999999999999_${'A'.repeat(43)}`]) {
      expect(await findUserByIngestKey(app.db, bad), bad).toBeUndefined()
    }
    await app.db.query('update users set role = \'ADMIN\' where id = $1', [tester.user.id])
    expect(await findUserByIngestKey(app.db, key)).toBeUndefined()
    await app.db.query('update users set role = \'BETATESTER\' where id = $1', [tester.user.id])
    expect(await findUserByIngestKey(app.db, key)).toBeDefined()

    const deleted = await app.inject({ method: 'DELETE', url: `/users/${tester.user.id}`, headers: bearer(admin.token) })
    expect(deleted.statusCode).toBe(200)
    expect(await findUserByIngestKey(app.db, key)).toBeUndefined()
    expect((await pushWithKey(key)).statusCode).toBe(401)
  })

  it('marks a key used at most once a minute', async () => {
    const tester = await createUserWithToken(app)
    const { id, key } = await mintedKey(tester.token)
    const lastUsed = async () => (await app.db.query('select last_used_at from ingest_keys where id = $1', [id])).rows[0].last_used_at as Date | null
    expect(await lastUsed()).toBeNull()
    await findUserByIngestKey(app.db, key)
    const first = await lastUsed()
    expect(first).toBeInstanceOf(Date)
    await findUserByIngestKey(app.db, key)
    expect(await lastUsed()).toEqual(first)
    await app.db.query('update ingest_keys set last_used_at = now() - interval \'61 seconds\' where id = $1', [id])
    await findUserByIngestKey(app.db, key)
    expect((await lastUsed())!.getTime()).toBeGreaterThan(Date.now() - 10_000)
    const listed = (await app.inject({ url: '/me/ingest-keys', headers: bearer(tester.token) })).json().items[0]
    expect(listed.lastUsedAt).toEqual(expect.any(String))
  })
})

describe('motion-ingest ingest-keys', () => {
  interface Run { code: number, stdout: string, stderr: string }
  const cli = (args: string[]): Promise<Run> => new Promise(resolve => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, DATABASE_URL: databaseUrl, LOG_LEVEL: 'error' } },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }))
  })

  it('mints a key that records, lists it without the secret, and revokes it', async () => {
    const tester = await createUserWithToken(app)
    const created = await cli(['ingest-keys', 'create', '--user', String(tester.user.id), '--label', 'cli phone', '--json'])
    expect(created.code, created.stderr).toBe(0)
    const minted = JSON.parse(created.stdout)
    expect(minted).toMatchObject({ label: 'cli phone', pushUrl: `/ingest/sensor-logger/${minted.key}` })
    expect((await pushWithKey(minted.key)).statusCode).toBe(200)

    const listed = await cli(['ingest-keys', 'list', '--user', String(tester.user.id)])
    expect(listed.code, listed.stderr).toBe(0)
    expect(listed.stdout).toContain('cli phone')
    expect(listed.stdout).toContain('1 ingest key')
    expect(listed.stdout).not.toContain(minted.key.slice(`mik_${minted.id}_`.length))

    const revoked = await cli(['ingest-keys', 'revoke', String(minted.id), '--user', String(tester.user.id)])
    expect(revoked.code, revoked.stderr).toBe(0)
    expect((await pushWithKey(minted.key)).statusCode).toBe(401)
    const again = await cli(['ingest-keys', 'revoke', String(minted.id), '--user', String(tester.user.id)])
    expect(again.code).toBe(1)
    expect(again.stderr).toContain('holds no ingest key')

    const forAdmin = await cli(['ingest-keys', 'create', '--user', String(admin.user.id)])
    expect(forAdmin.code).toBe(1)
    expect(forAdmin.stderr).toContain('not a beta tester')
  }, 60_000)
})
