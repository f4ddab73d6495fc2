import { describe, expect, it } from 'vitest'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'

const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl)
const admin = await createUserWithToken(app, 'ADMIN')
const tester = await createUserWithToken(app, 'BETATESTER')

describe('login', () => {
  it('returns a token for the right email and key, which then authenticates', async () => {
    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.user.email.toUpperCase(), publicKey: admin.user.publicKey } })
    expect(login.statusCode).toBe(200)
    const body = login.json()
    expect(body.user).toMatchObject({ id: admin.user.id, role: 'ADMIN' })
    expect(new Date(body.expiresAt).getTime()).toBeGreaterThan(Date.now())
    const users = await app.inject({ url: '/users', headers: bearer(body.accessToken) })
    expect(users.statusCode).toBe(200)
  })

  it('refuses a wrong key and an unknown email with 401', async () => {
    for (const payload of [{ email: admin.user.email, publicKey: 'not-the-key' }, { email: 'nobody@example.test', publicKey: admin.user.publicKey }]) {
      const response = await app.inject({ method: 'POST', url: '/auth/login', payload })
      expect(response.statusCode).toBe(401)
      expect(response.json()).toMatchObject({ error: 'UNAUTHORIZED' })
    }
  })

  it('rejects a malformed body with 400 naming the field', async () => {
    const response = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'not-an-email', publicKey: 'x' } })
    expect(response.statusCode).toBe(400)
    expect(response.json().message).toContain('email')
  })
})

describe('authentication and roles', () => {
  it('answers 401 without a token, with a garbage token, and with a forged secret', async () => {
    const forged = admin.token.replace(/\.[^.]+$/, '.' + 'A'.repeat(43))
    for (const headers of [{}, bearer('garbage'), bearer(forged)]) {
      const response = await app.inject({ url: '/users', headers })
      expect(response.statusCode).toBe(401)
    }
  })

  it('refuses an expired token', async () => {
    const expired = await createUserWithToken(app, 'ADMIN', 60)
    await app.db.query('update access_tokens set expires_at = now() - interval \'1 second\' where user_id = $1', [expired.user.id])
    const response = await app.inject({ url: '/me', headers: bearer(expired.token) })
    expect(response.statusCode).toBe(401)
  })

  it('gives a beta tester 403 on admin routes and their own profile on /me', async () => {
    expect((await app.inject({ url: '/users', headers: bearer(tester.token) })).statusCode).toBe(403)
    const me = await app.inject({ url: '/me', headers: bearer(tester.token) })
    expect(me.statusCode).toBe(200)
    expect(me.json()).toMatchObject({ id: tester.user.id, role: 'BETATESTER' })
  })

  it('does not accept ?access_token= on ordinary routes', async () => {
    const response = await app.inject({ url: `/me?access_token=${encodeURIComponent(tester.token)}` })
    expect(response.statusCode).toBe(401)
  })
})

describe('users', () => {
  it('creates, finds by public key, pages and deletes', async () => {
    const created = await app.inject({
      method: 'POST',
      url: '/users',
      headers: bearer(admin.token),
      payload: { name: 'Ada', email: 'ada@example.test', publicKey: '  0xAbC123  ', role: 'BETATESTER' }
    })
    expect(created.statusCode).toBe(201)
    const ada = created.json()
    expect(ada.publicKey).toBe('0xAbC123')

    const byKey = await app.inject({ url: '/users/by-public-key/0xAbC123', headers: bearer(admin.token) })
    expect(byKey.json()).toMatchObject({ id: ada.id, email: 'ada@example.test' })
    expect((await app.inject({ url: '/users/by-public-key/nope', headers: bearer(admin.token) })).statusCode).toBe(404)

    const page = await app.inject({ url: '/users?take=1&skip=0', headers: bearer(admin.token) })
    expect(page.json().items).toHaveLength(1)
    expect(page.json().total).toBeGreaterThanOrEqual(3)

    const deleted = await app.inject({ method: 'DELETE', url: `/users/${ada.id}`, headers: bearer(admin.token) })
    expect(deleted.statusCode).toBe(200)
    expect(deleted.json()).toEqual({ deleted: { users: 1, sessions: 0, readings: 0, accessTokens: 0 } })
    expect((await app.inject({ method: 'DELETE', url: `/users/${ada.id}`, headers: bearer(admin.token) })).statusCode).toBe(404)
  })

  it('answers 409 for a duplicate email (any case) or public key', async () => {
    const base = { name: 'Dup', email: 'dup@example.test', publicKey: 'dup-key' }
    expect((await app.inject({ method: 'POST', url: '/users', headers: bearer(admin.token), payload: base })).statusCode).toBe(201)
    const sameEmail = await app.inject({ method: 'POST', url: '/users', headers: bearer(admin.token), payload: { ...base, email: 'DUP@example.test', publicKey: 'other' } })
    expect(sameEmail.statusCode).toBe(409)
    expect(sameEmail.json().message).toContain('email')
    const sameKey = await app.inject({ method: 'POST', url: '/users', headers: bearer(admin.token), payload: { ...base, email: 'other@example.test' } })
    expect(sameKey.statusCode).toBe(409)
    expect(sameKey.json().message).toContain('public key')
  })

  it('rejects bad bodies and bad paging with 400', async () => {
    const badRole = await app.inject({ method: 'POST', url: '/users', headers: bearer(admin.token), payload: { name: 'x', email: 'x@example.test', publicKey: 'k', role: 'ROOT' } })
    expect(badRole.statusCode).toBe(400)
    expect(badRole.json().message).toContain('role')
    for (const query of ['take=-1', 'take=1.5', 'take=100000', 'skip=-3', 'take=abc']) {
      const response = await app.inject({ url: `/users?${query}`, headers: bearer(admin.token) })
      expect(response.statusCode, query).toBe(400)
    }
  })

  it('deletes a user\'s token with them', async () => {
    const doomed = await createUserWithToken(app, 'BETATESTER')
    expect((await app.inject({ url: '/me', headers: bearer(doomed.token) })).statusCode).toBe(200)
    await app.inject({ method: 'DELETE', url: `/users/${doomed.user.id}`, headers: bearer(admin.token) })
    expect((await app.inject({ url: '/me', headers: bearer(doomed.token) })).statusCode).toBe(401)
  })
})
