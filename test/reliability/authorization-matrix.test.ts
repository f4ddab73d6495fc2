import { randomBytes } from 'node:crypto'
import type { InjectOptions } from 'fastify'
import { describe, expect, it } from 'vitest'
import { createOrResumeSession, destroySession } from '../../src/db/session-lifecycle.js'
import { insertUser } from '../../src/db/users-repository.js'
import { ed25519Signer } from '../auth/signers.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import WebSocket from 'ws'
import { wsUrl } from '../ws-client.js'

const databaseUrl = await createTestDatabase()
// With METRICS_TOKEN set, /metrics takes that token only: no user token, not even an admin's, opens it.
const app = await build(databaseUrl, { METRICS_TOKEN: 'metrics-scraper-token' })
await app.listen({ port: 0, host: '127.0.0.1' })

type Principal = 'none' | 'expired' | 'owner' | 'other' | 'admin'
const PRINCIPALS: Principal[] = ['none', 'expired', 'owner', 'other', 'admin']

/**
 * Fresh for every cell, so a cell that deletes or ends something cannot
 * change another: the owner is a beta tester with an active session, the
 * other a second beta tester, and the expired token is the owner's.
 */
async function fixture () {
  const owner = await createUserWithToken(app, 'BETATESTER')
  const other = await createUserWithToken(app, 'BETATESTER')
  const admin = await createUserWithToken(app, 'ADMIN')
  const expired = await createUserWithToken(app, 'BETATESTER')
  await app.db.query('update access_tokens set user_id = $1, expires_at = now() - interval \'1 second\' where user_id = $2', [owner.user.id, expired.user.id])
  const { session } = await createOrResumeSession(app.db, owner.user.id, 600, { secret: `owner-${owner.user.id}` })
  const tokens: Record<Principal, string | undefined> = { none: undefined, expired: expired.token, owner: owner.token, other: other.token, admin: admin.token }
  return { owner, other, admin, session, tokens }
}
type Fixture = Awaited<ReturnType<typeof fixture>>

type Request = Omit<InjectOptions, 'headers'> & { url: string, websocket?: boolean }
type Statuses = [none: number, expired: number, owner: number, other: number, admin: number]
interface Row {
  route: string
  request: (f: Fixture) => Request | Promise<Request>
  expect: Statuses
  /** The body may legitimately carry the owner's data to anyone (login with the owner's credentials). */
  public?: boolean
}

const unique = () => randomBytes(4).toString('hex')

/** A complete signature sign-in by a fresh Ed25519 user: challenge, sign, and the verify request. */
async function signedVerify (): Promise<Request> {
  const signer = ed25519Signer()
  await insertUser(app.db, { name: 'Signer', email: `signer-${unique()}@example.test`, publicKey: signer.near, role: 'BETATESTER' })
  const challenge = await app.inject({ method: 'POST', url: '/auth/challenge', payload: { publicKey: signer.near } })
  return { method: 'POST', url: '/auth/verify', payload: { publicKey: signer.near, signature: signer.sign(challenge.json().message) } }
}

/**
 * Every route and the socket, one line each: [no token, expired token, owner, other beta tester, admin].
 * "owner" is the beta tester whose user, session or data the request targets.
 */
const ROWS: Row[] = [
  { route: 'POST /auth/login', request: f => ({ method: 'POST', url: '/auth/login', payload: { email: f.owner.user.email, publicKey: f.owner.user.publicKey } }), expect: [200, 200, 200, 200, 200], public: true },
  { route: 'POST /auth/challenge', request: () => ({ method: 'POST', url: '/auth/challenge', payload: { publicKey: `0x${unique()}${'0'.repeat(32)}` } }), expect: [200, 200, 200, 200, 200] },
  { route: 'POST /auth/verify', request: signedVerify, expect: [200, 200, 200, 200, 200], public: true },
  { route: 'GET /me', request: () => ({ method: 'GET', url: '/me' }), expect: [401, 401, 200, 200, 200] },
  { route: 'POST /users', request: () => ({ method: 'POST', url: '/users', payload: { name: 'New', email: `new-${unique()}@example.test`, publicKey: `new-${unique()}` } }), expect: [401, 401, 403, 403, 201] },
  { route: 'GET /users', request: () => ({ method: 'GET', url: '/users' }), expect: [401, 401, 403, 403, 200] },
  { route: 'GET /users/by-public-key/:publicKey', request: f => ({ method: 'GET', url: `/users/by-public-key/${encodeURIComponent(f.owner.user.publicKey)}` }), expect: [401, 401, 403, 403, 200] },
  { route: 'DELETE /users/:id', request: f => ({ method: 'DELETE', url: `/users/${f.owner.user.id}` }), expect: [401, 401, 403, 403, 200] },
  { route: 'POST /sessions/:id/end', request: f => ({ method: 'POST', url: `/sessions/${f.session.id}/end` }), expect: [401, 401, 403, 403, 200] },
  { route: 'GET /users/:id/sessions', request: f => ({ method: 'GET', url: `/users/${f.owner.user.id}/sessions` }), expect: [401, 401, 403, 403, 200] },
  { route: 'GET /sessions', request: () => ({ method: 'GET', url: '/sessions' }), expect: [401, 401, 200, 200, 200] },
  { route: 'GET /sessions/:id', request: f => ({ method: 'GET', url: `/sessions/${f.session.id}` }), expect: [401, 401, 200, 404, 200] },
  {
    route: 'GET /sessions/:id/report',
    request: async f => {
      await destroySession(app.db, f.session.id, 'client', 0)
      return { method: 'GET', url: `/sessions/${f.session.id}/report` }
    },
    expect: [401, 401, 200, 404, 200]
  },
  { route: 'PATCH /sessions/:id', request: f => ({ method: 'PATCH', url: `/sessions/${f.session.id}`, payload: { metadata: { label: 'relabelled' } } }), expect: [401, 401, 200, 404, 200] },
  { route: 'GET /sessions/:id/readings', request: f => ({ method: 'GET', url: `/sessions/${f.session.id}/readings` }), expect: [401, 401, 200, 404, 200] },
  { route: 'GET /sessions/:id/readings.csv', request: f => ({ method: 'GET', url: `/sessions/${f.session.id}/readings.csv` }), expect: [401, 401, 200, 404, 200] },
  { route: 'GET /health', request: () => ({ method: 'GET', url: '/health' }), expect: [200, 200, 200, 200, 200] },
  { route: 'GET /status', request: () => ({ method: 'GET', url: '/status' }), expect: [200, 200, 200, 200, 200] },
  { route: 'GET /metrics', request: () => ({ method: 'GET', url: '/metrics' }), expect: [401, 401, 401, 401, 401] },
  { route: 'GET /docs/json', request: () => ({ method: 'GET', url: '/docs/json' }), expect: [200, 200, 200, 200, 200] },
  { route: 'GET /ws (upgrade)', request: () => ({ method: 'GET', url: '/ws', websocket: true }), expect: [401, 401, 101, 101, 403] }
]

/** A WebSocket upgrade: 101 when the socket opens, else the refusal's status and body. */
function upgrade (headers: Record<string, string>): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(wsUrl(app), { headers })
    socket.once('open', () => {
      socket.once('close', () => resolve({ status: 101, body: '' }))
      socket.close()
    })
    socket.once('unexpected-response', (_request, response) => {
      let body = ''
      response.on('data', chunk => { body += chunk })
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }))
    })
    socket.once('error', reject)
  })
}

async function perform (request: Request, token: string | undefined): Promise<{ status: number, body: string }> {
  const headers = token ? bearer(token) : {}
  if (request.websocket) return upgrade(headers)
  const { websocket: _, ...options } = request
  const response = await app.inject({ ...options, headers })
  return { status: response.statusCode, body: response.body }
}

const CELLS = ROWS.flatMap(row => PRINCIPALS.map((who, i) => ({ row, who, status: row.expect[i] as number })))

describe('authorization matrix', () => {
  it.each(CELLS)('$row.route as $who → $status', async ({ row, who, status }) => {
    const f = await fixture()
    const response = await perform(await row.request(f), f.tokens[who])
    expect(response.status).toBe(status)
    if (status >= 400) expect(JSON.parse(response.body)).toEqual({ error: expect.any(String), message: expect.any(String) })
    // Another user's data is never returned: no trace of the owner reaches anyone but the owner and admins.
    if (!row.public && (who === 'none' || who === 'expired' || who === 'other')) {
      for (const secret of [f.owner.user.email, f.owner.user.publicKey, `owner-${f.owner.user.id}`]) expect(response.body).not.toContain(secret)
    }
  })

  it('covers every route the app registers', () => {
    // printRoutes draws a tree: each level is indented by 4 and continues its parent's path.
    const registered = new Set<string>()
    const parents: string[] = []
    for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
      const match = /^([│ ]*)[├└]── (\S+)(?: \(([A-Z, ]+)\))?$/.exec(line)
      if (!match) continue
      const depth = (match[1] as string).length / 4
      const path = (parents[depth - 1] ?? '') + match[2]
      parents.length = depth
      parents[depth] = path
      for (const method of match[3]?.split(', ') ?? []) if (method !== 'HEAD') registered.add(`${method} ${path}`)
    }
    expect(registered.size).toBeGreaterThanOrEqual(ROWS.length)
    const covered = new Set(ROWS.map(row => row.route.replace(' (upgrade)', '')))
    // The OpenAPI UI and its static files are public by design; GET /docs/json stands for them.
    const uncovered = [...registered].filter(route => !covered.has(route) && !/^GET \/docs(\/|$)/.test(route))
    expect(uncovered).toEqual([])
  })
})
