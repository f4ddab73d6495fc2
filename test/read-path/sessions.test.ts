import { describe, expect, it } from 'vitest'
import { insertSession } from '../fixtures/sessions.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'

const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl, { SESSION_METADATA_MAX_BYTES: '300' })
const admin = await createUserWithToken(app, 'ADMIN')
const owner = await createUserWithToken(app, 'BETATESTER')
const stranger = await createUserWithToken(app, 'BETATESTER')

const oldest = await insertSession(app.db, owner.user.id, { createdAt: '2024-01-01T10:00:00Z', metadata: { device: 'Pixel 8', activity: 'cycling' } })
const middle = await insertSession(app.db, owner.user.id, { createdAt: '2024-02-01T10:00:00Z' })
const newest = await insertSession(app.db, owner.user.id, { createdAt: '2024-03-01T10:00:00Z', destroyed: false })
const strangers = await insertSession(app.db, stranger.user.id, { createdAt: '2024-02-15T10:00:00Z' })

const request = (method: 'GET' | 'PATCH', url: string, token?: string, payload?: object) =>
  app.inject({ method, url, headers: token ? bearer(token) : {}, ...(payload ? { payload } : {}) })

describe('GET /sessions', () => {
  it('lists the caller\'s own sessions, newest first, paged', async () => {
    const all = await request('GET', '/sessions', owner.token)
    expect(all.statusCode).toBe(200)
    expect(all.json()).toMatchObject({ total: 3, take: 50, skip: 0 })
    expect(all.json().items.map((s: { id: number }) => s.id)).toEqual([newest, middle, oldest])
    const page = await request('GET', '/sessions?take=1&skip=1', owner.token)
    expect(page.json()).toMatchObject({ total: 3, take: 1, skip: 1, items: [{ id: middle }] })
    expect((await request('GET', '/sessions', stranger.token)).json().items.map((s: { id: number }) => s.id)).toEqual([strangers])
  })

  it('needs a token and sane paging', async () => {
    expect((await request('GET', '/sessions')).statusCode).toBe(401)
    expect((await request('GET', '/sessions?take=501', owner.token)).statusCode).toBe(400)
  })
})

describe('GET /users/:id/sessions', () => {
  it('lists any user\'s sessions for an admin', async () => {
    const response = await request('GET', `/users/${owner.user.id}/sessions?take=2`, admin.token)
    expect(response.statusCode).toBe(200)
    expect(response.json()).toMatchObject({ total: 3, items: [{ id: newest }, { id: middle }] })
  })

  it('refuses beta testers, even for their own id, and 404s an unknown user', async () => {
    expect((await request('GET', `/users/${owner.user.id}/sessions`, owner.token)).statusCode).toBe(403)
    expect((await request('GET', '/users/999999999/sessions', admin.token)).statusCode).toBe(404)
  })
})

describe('GET /sessions/:id', () => {
  it('shows a session to its owner and to admins', async () => {
    for (const token of [owner.token, admin.token]) {
      const response = await request('GET', `/sessions/${oldest}`, token)
      expect(response.statusCode).toBe(200)
      expect(response.json()).toMatchObject({
        id: oldest,
        userId: owner.user.id,
        createdAt: '2024-01-01T10:00:00.000Z',
        destroyReason: 'client',
        integrity: 'ok',
        metadata: { device: 'Pixel 8', activity: 'cycling' },
        flaggedIncorrect: false
      })
    }
    expect((await request('GET', `/sessions/${newest}`, owner.token)).json()).toMatchObject({ destroyedAt: null, integrity: null })
  })

  it('answers another beta tester exactly as for a session that does not exist', async () => {
    const hidden = await request('GET', `/sessions/${strangers}`, owner.token)
    const missing = await request('GET', '/sessions/999999999', owner.token)
    expect(hidden.statusCode).toBe(404)
    expect(missing.statusCode).toBe(404)
    expect(hidden.json().message.replace(String(strangers), 'ID')).toBe(missing.json().message.replace('999999999', 'ID'))
    expect((await request('GET', `/sessions/${oldest}`)).statusCode).toBe(401)
    expect((await request('GET', '/sessions/abc', owner.token)).statusCode).toBe(400)
  })
})

describe('PATCH /sessions/:id', () => {
  it('merges metadata, removing keys set to null', async () => {
    const response = await request('PATCH', `/sessions/${oldest}`, owner.token, { metadata: { activity: 'running', terrain: 'trail', device: null } })
    expect(response.statusCode).toBe(200)
    expect(response.json().metadata).toEqual({ activity: 'running', terrain: 'trail' })
    const again = await request('PATCH', `/sessions/${oldest}`, admin.token, { metadata: { notes: { carried: 'pocket' } } })
    expect(again.json().metadata).toEqual({ activity: 'running', terrain: 'trail', notes: { carried: 'pocket' } })
    expect((await request('GET', `/sessions/${oldest}`, owner.token)).json().metadata).toEqual(again.json().metadata)
  })

  it('flags with a reason, keeps the first flag time, and unflags', async () => {
    const flagged = await request('PATCH', `/sessions/${middle}`, owner.token, { flaggedIncorrect: true, flagReason: 'phone fell out of the pocket' })
    expect(flagged.statusCode).toBe(200)
    expect(flagged.json()).toMatchObject({ flaggedIncorrect: true, flagReason: 'phone fell out of the pocket' })
    const flaggedAt = flagged.json().flaggedAt
    expect(Date.parse(flaggedAt)).toBeGreaterThan(Date.now() - 60_000)

    const reworded = await request('PATCH', `/sessions/${middle}`, admin.token, { flaggedIncorrect: true, flagReason: 'dropped' })
    expect(reworded.json()).toMatchObject({ flaggedIncorrect: true, flagReason: 'dropped', flaggedAt })

    const metadataOnly = await request('PATCH', `/sessions/${middle}`, owner.token, { metadata: { bike: 'gravel' } })
    expect(metadataOnly.json()).toMatchObject({ flaggedIncorrect: true, flagReason: 'dropped', flaggedAt, metadata: { bike: 'gravel' } })

    const unflagged = await request('PATCH', `/sessions/${middle}`, owner.token, { flaggedIncorrect: false })
    expect(unflagged.json()).toMatchObject({ flaggedIncorrect: false, flagReason: null, flaggedAt: null })
  })

  it('rejects malformed patches with 400', async () => {
    const bodies = [
      {},
      { flaggedIncorrect: true },
      { flaggedIncorrect: true, flagReason: '   ' },
      { flaggedIncorrect: false, flagReason: 'why' },
      { flagReason: 'why' },
      { metadata: ['not', 'an', 'object'] },
      { metadata: 'text' },
      { metadata: { note: 'nul \u0000 byte' } },
      { metadata: {}, userId: stranger.user.id }
    ]
    for (const body of bodies) {
      const response = await request('PATCH', `/sessions/${oldest}`, owner.token, body)
      expect(response.statusCode, JSON.stringify(body)).toBe(400)
    }
  })

  it('refuses metadata that would outgrow the configured cap, leaving it unchanged', async () => {
    const before = (await request('GET', `/sessions/${oldest}`, owner.token)).json()
    const response = await request('PATCH', `/sessions/${oldest}`, owner.token, { metadata: { notes: 'x'.repeat(300) }, flaggedIncorrect: true, flagReason: 'bad' })
    expect(response.statusCode).toBe(413)
    expect(response.json().error).toBe('METADATA_TOO_LARGE')
    expect((await request('GET', `/sessions/${oldest}`, owner.token)).json()).toEqual(before)
    const fresh = await insertSession(app.db, owner.user.id)
    // {"k":"…"} is 8 bytes plus the value: 292 characters reach the cap of 300 exactly.
    expect((await request('PATCH', `/sessions/${fresh}`, owner.token, { metadata: { k: 'x'.repeat(292) } })).statusCode).toBe(200)
    expect((await request('PATCH', `/sessions/${fresh}`, owner.token, { metadata: { k: 'x'.repeat(293) } })).statusCode).toBe(413)
    // Removing keys makes room.
    const smaller = await request('PATCH', `/sessions/${oldest}`, owner.token, { metadata: { notes: null, short: 'y'.repeat(150) } })
    expect(smaller.statusCode).toBe(200)
  })

  it('hides other users\' sessions behind 404 and needs a token', async () => {
    const response = await request('PATCH', `/sessions/${strangers}`, owner.token, { metadata: { hacked: true } })
    expect(response.statusCode).toBe(404)
    expect((await request('GET', `/sessions/${strangers}`, stranger.token)).json().metadata).toEqual({})
    expect((await request('PATCH', `/sessions/${oldest}`, undefined, { metadata: { a: 1 } })).statusCode).toBe(401)
    expect((await request('PATCH', '/sessions/999999999', admin.token, { metadata: { a: 1 } })).statusCode).toBe(404)
  })
})
