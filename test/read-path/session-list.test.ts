import { describe, expect, it } from 'vitest'
import { insertSession } from '../fixtures/sessions.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'

const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl)
const admin = await createUserWithToken(app, 'ADMIN')
const alice = await createUserWithToken(app, 'BETATESTER')
const bob = await createUserWithToken(app, 'BETATESTER')

// Two share a creation instant to the microsecond: only the id tells them apart in the order.
const a1 = await insertSession(app.db, alice.user.id, { createdAt: '2024-01-01T10:00:00.000001Z', totalSensorReadingsWritten: 300 })
const a2 = await insertSession(app.db, alice.user.id, { createdAt: '2024-02-01T10:00:00Z', totalSensorReadingsWritten: 100, flagReason: 'phone fell' })
const a3 = await insertSession(app.db, alice.user.id, { createdAt: '2024-02-01T10:00:00Z', totalSensorReadingsWritten: 200 })
const a4 = await insertSession(app.db, alice.user.id, { createdAt: '2024-03-01T10:00:00Z', destroyed: false, totalSensorReadingsWritten: 50 })
const b1 = await insertSession(app.db, bob.user.id, { createdAt: '2024-01-15T10:00:00Z', totalSensorReadingsWritten: 1000 })

interface Page { items: Array<{ id: number }>, total: number, take: number, skip: number, nextCursor?: string | null }

async function list (url: string, token: string): Promise<Page> {
  const response = await app.inject({ method: 'GET', url, headers: bearer(token) })
  expect(response.statusCode, response.body).toBe(200)
  return response.json()
}

const ids = (page: Page) => page.items.map(item => item.id)

/** Every page of a list by following nextCursor, with the take given. */
async function allPagesByCursor (url: string, token: string, take: number): Promise<number[][]> {
  const pages: number[][] = []
  let cursor: string | null | undefined
  do {
    const separator = url.includes('?') ? '&' : '?'
    const page = await list(`${url}${separator}take=${take}${cursor ? `&cursor=${cursor}` : ''}`, token)
    pages.push(ids(page))
    cursor = page.nextCursor
  } while (cursor)
  return pages
}

describe('GET /sessions filters', () => {
  it('keeps take/skip paging and the newest-first order, and says nextCursor', async () => {
    const page = await list('/sessions?take=2&skip=1', alice.token)
    expect(page).toMatchObject({ total: 4, take: 2, skip: 1 })
    // Equal creation instants fall back to the id, newest (highest) first.
    expect(ids(page)).toEqual([a3, a2])
    expect(page.nextCursor).toEqual(expect.any(String))
    expect((await list('/sessions', alice.token)).nextCursor).toBeNull()
  })

  it('filters by flag, by whether the session is recording, and by start time', async () => {
    expect(ids(await list('/sessions?flagged=true', alice.token))).toEqual([a2])
    expect(ids(await list('/sessions?flagged=false', alice.token))).toEqual([a4, a3, a1])
    expect(ids(await list('/sessions?active=true', alice.token))).toEqual([a4])
    expect(ids(await list('/sessions?active=false', alice.token))).toEqual([a3, a2, a1])
    const range = await list('/sessions?from=2024-01-01T10:00:00.000001Z&to=2024-03-01T10:00:00Z', alice.token)
    expect(ids(range)).toEqual([a3, a2, a1])
    expect(range.total).toBe(3)
    expect(ids(await list('/sessions?from=2024-01-01T10:00:00.000002Z&to=2024-03-01T10:00:00.000001Z', alice.token))).toEqual([a4, a3, a2])
    expect(ids(await list(`/sessions?from=${encodeURIComponent('2024-02-01T11:00:00+01:00')}&to=2024-02-02T00:00:00Z`, alice.token))).toEqual([a3, a2])
  })

  it('lets an admin list one user\'s sessions with userId, and refuses it to a beta tester', async () => {
    expect(ids(await list(`/sessions?userId=${bob.user.id}`, admin.token))).toEqual([b1])
    expect((await list('/sessions', admin.token)).total).toBe(5)
    expect(ids(await list(`/sessions?userId=${alice.user.id}&active=true`, admin.token))).toEqual([a4])
    const refused = await app.inject({ method: 'GET', url: `/sessions?userId=${bob.user.id}`, headers: bearer(alice.token) })
    expect(refused.statusCode).toBe(403)
    // A beta tester's filters apply to their own sessions only.
    expect(ids(await list('/sessions?sort=-readings', bob.token))).toEqual([b1])
  })

  it('sorts by readings or creation, either way', async () => {
    expect(ids(await list('/sessions?sort=-readings', alice.token))).toEqual([a1, a3, a2, a4])
    expect(ids(await list('/sessions?sort=readings', alice.token))).toEqual([a4, a2, a3, a1])
    expect(ids(await list('/sessions?sort=createdAt', alice.token))).toEqual([a1, a2, a3, a4])
    expect(ids(await list('/sessions?sort=-createdAt', alice.token))).toEqual([a4, a3, a2, a1])
  })

  it('applies the same filters and sorts to GET /users/:id/sessions', async () => {
    expect(ids(await list(`/users/${alice.user.id}/sessions?flagged=false&sort=readings`, admin.token))).toEqual([a4, a3, a1])
    expect(await allPagesByCursor(`/users/${alice.user.id}/sessions?sort=createdAt`, admin.token, 3)).toEqual([[a1, a2, a3], [a4]])
  })

  it('filters by label, interval labels or the default label of metadata.activity, and lists each session\'s label names', async () => {
    const labelled = await createUserWithToken(app, 'BETATESTER')
    const withLabels = await insertSession(app.db, labelled.user.id, { createdAt: '2024-05-01T10:00:00Z' })
    const byActivity = await insertSession(app.db, labelled.user.id, { createdAt: '2024-05-02T10:00:00Z', metadata: { activity: 'Cycling' } })
    const unlabelled = await insertSession(app.db, labelled.user.id, { createdAt: '2024-05-03T10:00:00Z' })
    await app.db.query(`insert into session_labels (session_id, start_at, end_at, label) values
      ($1, '2024-05-01T10:00:00Z', '2024-05-01T10:01:00Z', 'walking'),
      ($1, '2024-05-01T10:01:00Z', '2024-05-01T10:02:00Z', 'cycling'),
      ($1, '2024-05-01T10:02:00Z', '2024-05-01T10:03:00Z', 'walking')`, [withLabels])
    expect(ids(await list('/sessions?label=cycling', labelled.token))).toEqual([byActivity, withLabels])
    expect(ids(await list('/sessions?label=Walking', labelled.token))).toEqual([withLabels])
    expect(ids(await list('/sessions?label=still', labelled.token))).toEqual([])
    const page = await list('/sessions', labelled.token) as unknown as { items: Array<{ id: number, labels: string[] }> }
    expect(page.items.map(item => [item.id, item.labels])).toEqual([[unlabelled, []], [byActivity, []], [withLabels, ['cycling', 'walking']]])
  })

  it('refuses unknown filter values with a 400', async () => {
    for (const query of ['label=no%20such', 'flagged=yes', 'active=1', 'from=yesterday', 'to=2024-01-01', 'sort=duration', 'userId=0']) {
      const response = await app.inject({ method: 'GET', url: `/sessions?${query}`, headers: bearer(admin.token) })
      expect(response.statusCode, query).toBe(400)
    }
  })
})

describe('GET /sessions cursor paging', () => {
  it('walks every order page by page without repeating or skipping, ties on the creation instant included', async () => {
    for (const sort of ['-createdAt', 'createdAt', '-readings', 'readings']) {
      const whole = ids(await list(`/sessions?sort=${sort}`, alice.token))
      for (const take of [1, 2, 3]) {
        const pages = await allPagesByCursor(`/sessions?sort=${sort}`, alice.token, take)
        expect(pages.flat(), `${sort} by ${take}`).toEqual(whole)
        expect(pages.every(page => page.length <= take)).toBe(true)
      }
    }
  })

  it('keeps its place when a session is created between pages, where skip would repeat one', async () => {
    const carol = await createUserWithToken(app, 'BETATESTER')
    const c1 = await insertSession(app.db, carol.user.id, { createdAt: '2024-01-01T00:00:00Z' })
    const c2 = await insertSession(app.db, carol.user.id, { createdAt: '2024-01-02T00:00:00Z' })
    const first = await list('/sessions?take=1', carol.token)
    expect(ids(first)).toEqual([c2])
    await insertSession(app.db, carol.user.id, { createdAt: '2024-01-03T00:00:00Z' })
    expect(ids(await list(`/sessions?take=1&cursor=${first.nextCursor}`, carol.token))).toEqual([c1])
    expect(ids(await list('/sessions?take=1&skip=1', carol.token))).toEqual([c2])
  })

  it('refuses a cursor it did not issue, one issued for another sort, and one with skip', async () => {
    const { nextCursor } = await list('/sessions?take=1', alice.token)
    const forged = Buffer.from(JSON.stringify(['-createdAt', 'not a time', 1])).toString('base64url')
    for (const query of ['cursor=abc', `cursor=${forged}`, `cursor=${nextCursor}&sort=readings`, `cursor=${nextCursor}&skip=1`]) {
      const response = await app.inject({ method: 'GET', url: `/sessions?${query}`, headers: bearer(alice.token) })
      expect(response.statusCode, query).toBe(400)
      expect(response.json().error).toBe('VALIDATION_FAILED')
    }
  })

  it('shows a beta tester only their own sessions whatever the cursor says', async () => {
    // A cursor taken from an admin's list of everyone's sessions still pages only Bob's for Bob.
    const { nextCursor } = await list('/sessions?take=1&sort=createdAt', admin.token)
    expect(ids(await list(`/sessions?sort=createdAt&cursor=${nextCursor}`, bob.token))).toEqual([b1])
  })
})
