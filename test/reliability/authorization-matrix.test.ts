import { randomBytes } from 'node:crypto'
import http from 'node:http'
import type { InjectOptions } from 'fastify'
import { describe, expect, it } from 'vitest'
import { mintIngestKey, revokeIngestKey } from '../../src/db/ingest-keys-repository.js'
import { createOrResumeSession, destroySession } from '../../src/db/sessions/session-lifecycle.js'
import { insertUser } from '../../src/db/users-repository.js'
import { SessionLabels } from '../../src/labels/session-labels.js'
import { MAX_INGEST_KEYS_PER_USER } from '../../src/schemas/ingest-keys.js'
import { SENSORS } from '../../src/schemas/sensors.js'
import { ed25519Signer } from '../auth/signers.js'
import { insertReadings } from '../fixtures/sessions.js'
import { TEST_PUSH } from '../fixtures/sensor-logger-messages.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { httpOrigin } from '../live/sse-client.js'
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
  // Written wherever the owner's data can carry text (the session, label notes, key labels): it must reach no one else.
  const secret = `owner-${owner.user.id}`
  const { session } = await createOrResumeSession(app.db, owner.user.id, 600, { secret })
  const tokens: Record<Principal, string | undefined> = { none: undefined, expired: expired.token, owner: owner.token, other: other.token, admin: admin.token }
  return { owner, other, admin, session, secret, tokens }
}
type Fixture = Awaited<ReturnType<typeof fixture>>

type Request = Omit<InjectOptions, 'headers'> & {
  url: string
  websocket?: boolean
  /** An endless response (Server-Sent Events): sent over a socket and hung up after its first chunk. */
  stream?: boolean
}
type Statuses = [none: number, expired: number, owner: number, other: number, admin: number]
interface Row {
  route: string
  request: (f: Fixture) => Request | Promise<Request>
  expect: Statuses
  /** The body may legitimately carry the owner's data to anyone (login with the owner's credentials). */
  public?: boolean
}

const unique = () => randomBytes(4).toString('hex')
const labels = new SessionLabels(app.db)
const secondsAgo = (seconds: number) => new Date(Date.now() - seconds * 1000)

/** A label on the owner's active session, a few seconds back, whose note is the owner's secret. */
async function ownerLabel (f: Fixture): Promise<number> {
  const result = await labels.add(f.session.id, f.owner.user.id, {
    startUs: secondsAgo(10).getTime() * 1000, endUs: secondsAgo(5).getTime() * 1000, label: 'walking', note: f.secret
  })
  if (result.status !== 'recorded') throw new Error(`label not stored: ${result.status}`)
  return result.label.id
}

/** Two seconds of every sensor at 100 Hz in the owner's session, which then ends: a session with something to summarise and export. */
async function endWithReadings (f: Fixture): Promise<void> {
  const readings = Array.from({ length: 200 }, (_, i) => SENSORS.map(sensor => ({
    timestamp: new Date(secondsAgo(3).getTime() + i * 10).toISOString(), sensor, x: i, y: 0, z: 9.81
  }))).flat()
  await insertReadings(app.db, f.session.id, readings)
  await destroySession(app.db, f.session.id, 'client', readings.length)
}

/** An ingest key of the owner's, labelled with the owner's secret. */
async function ownerIngestKey (f: Fixture): Promise<{ id: number, key: string }> {
  const result = await mintIngestKey(app.db, f.owner.user.id, f.secret, MAX_INGEST_KEYS_PER_USER)
  if (result.status !== 'minted') throw new Error(`no ingest key: ${result.status}`)
  return result.key
}

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
  { route: 'GET /ws (upgrade)', request: () => ({ method: 'GET', url: '/ws', websocket: true }), expect: [401, 401, 101, 101, 403] },
  {
    route: 'GET /sessions/:id/readings/summary',
    request: async f => {
      await endWithReadings(f)
      return { method: 'GET', url: `/sessions/${f.session.id}/readings/summary?buckets=10` }
    },
    expect: [401, 401, 200, 404, 200]
  },
  // Everyone signed in may watch: a beta tester's stream carries their own sessions' batches only (test/live).
  { route: 'GET /live', request: () => ({ method: 'GET', url: '/live', stream: true }), expect: [401, 401, 200, 200, 200] },
  {
    route: 'GET /datasets/export',
    request: async f => {
      await endWithReadings(f)
      return { method: 'GET', url: `/datasets/export?layout=long&sessions=${f.session.id}` }
    },
    expect: [401, 401, 403, 403, 200]
  },
  {
    route: 'GET /sessions/:id/labels',
    request: async f => {
      await ownerLabel(f)
      return { method: 'GET', url: `/sessions/${f.session.id}/labels` }
    },
    expect: [401, 401, 200, 404, 200]
  },
  {
    route: 'POST /sessions/:id/labels',
    request: f => ({
      method: 'POST',
      url: `/sessions/${f.session.id}/labels`,
      payload: { startTime: secondsAgo(10).toISOString(), endTime: secondsAgo(5).toISOString(), label: 'walking', note: f.secret }
    }),
    expect: [401, 401, 201, 404, 201]
  },
  {
    route: 'PATCH /sessions/:id/labels/:labelId',
    request: async f => ({ method: 'PATCH', url: `/sessions/${f.session.id}/labels/${await ownerLabel(f)}`, payload: { label: 'cycling' } }),
    expect: [401, 401, 200, 404, 200]
  },
  {
    route: 'DELETE /sessions/:id/labels/:labelId',
    request: async f => ({ method: 'DELETE', url: `/sessions/${f.session.id}/labels/${await ownerLabel(f)}` }),
    expect: [401, 401, 200, 404, 200]
  },
  { route: 'GET /labels/vocabulary', request: () => ({ method: 'GET', url: '/labels/vocabulary' }), expect: [401, 401, 200, 200, 200] },
  { route: 'POST /labels/vocabulary', request: () => ({ method: 'POST', url: '/labels/vocabulary', payload: { name: `v${unique()}` } }), expect: [401, 401, 403, 403, 201] },
  {
    route: 'DELETE /labels/vocabulary/:name',
    request: async () => {
      const name = `v${unique()}`
      await labels.addToVocabulary(name, null)
      return { method: 'DELETE', url: `/labels/vocabulary/${name}` }
    },
    expect: [401, 401, 403, 403, 200]
  },
  // /me/ingest-keys: each beta tester their own keys (the other beta tester mints and lists theirs); admins record nothing, so hold none.
  { route: 'POST /me/ingest-keys', request: () => ({ method: 'POST', url: '/me/ingest-keys', payload: { label: 'Pixel 9' } }), expect: [401, 401, 201, 201, 403] },
  {
    route: 'GET /me/ingest-keys',
    request: async f => {
      await ownerIngestKey(f)
      return { method: 'GET', url: '/me/ingest-keys' }
    },
    expect: [401, 401, 200, 200, 403]
  },
  {
    route: 'DELETE /me/ingest-keys/:keyId',
    request: async f => ({ method: 'DELETE', url: `/me/ingest-keys/${(await ownerIngestKey(f)).id}` }),
    expect: [401, 401, 200, 404, 403]
  },
  { route: 'POST /users/:id/ingest-keys', request: f => ({ method: 'POST', url: `/users/${f.owner.user.id}/ingest-keys`, payload: { label: 'Pixel 9' } }), expect: [401, 401, 403, 403, 201] },
  {
    route: 'GET /users/:id/ingest-keys',
    request: async f => {
      await ownerIngestKey(f)
      return { method: 'GET', url: `/users/${f.owner.user.id}/ingest-keys` }
    },
    expect: [401, 401, 403, 403, 200]
  },
  {
    route: 'DELETE /users/:id/ingest-keys/:keyId',
    request: async f => ({ method: 'DELETE', url: `/users/${f.owner.user.id}/ingest-keys/${(await ownerIngestKey(f)).id}` }),
    expect: [401, 401, 403, 403, 200]
  },
  // Sensor Logger's test push: answered once the sender is known, and it records nothing.
  { route: 'POST /ingest/sensor-logger', request: () => ({ method: 'POST', url: '/ingest/sensor-logger', payload: TEST_PUSH }), expect: [401, 401, 200, 200, 403] },
  // The key in the path is the credential (it is what Sensor Logger can send): a token beside it, anyone's or none, neither adds nor takes away.
  {
    route: 'POST /ingest/sensor-logger/:ingestKey',
    request: async f => ({ method: 'POST', url: `/ingest/sensor-logger/${(await ownerIngestKey(f)).key}`, payload: TEST_PUSH }),
    expect: [200, 200, 200, 200, 200]
  },
  {
    route: 'POST /ingest/sensor-logger/:ingestKey (revoked key)',
    request: async f => {
      const { id, key } = await ownerIngestKey(f)
      await revokeIngestKey(app.db, f.owner.user.id, id)
      return { method: 'POST', url: `/ingest/sensor-logger/${key}`, payload: TEST_PUSH }
    },
    expect: [401, 401, 401, 401, 401]
  },
  // The web page: a redirect to /app/, whatever the caller.
  { route: 'GET /', request: () => ({ method: 'GET', url: '/' }), expect: [302, 302, 302, 302, 302] },
  { route: 'GET /app', request: () => ({ method: 'GET', url: '/app' }), expect: [302, 302, 302, 302, 302] },
  {
    route: 'GET /sessions/:id/export',
    request: async f => {
      await endWithReadings(f)
      return { method: 'GET', url: `/sessions/${f.session.id}/export?layout=wide&format=parquet` }
    },
    expect: [401, 401, 200, 404, 200]
  }
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

/**
 * A GET over a socket of its own (inject would wait for the end of an endless
 * stream): the status, and the body, or only its first chunk while it
 * streams; then hangs up.
 */
function streamStart (url: string, headers: Record<string, string>): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    http.request(`${httpOrigin(app)}${url}`, { headers, agent: false }, response => {
      const status = response.statusCode ?? 0
      let body = ''
      response.setEncoding('utf8')
      if (status === 200) {
        response.once('data', (chunk: string) => {
          response.destroy()
          resolve({ status, body: chunk })
        })
        return
      }
      response.on('data', (chunk: string) => { body += chunk })
      response.on('end', () => resolve({ status, body }))
    }).on('error', reject).end()
  })
}

async function perform (request: Request, token: string | undefined): Promise<{ status: number, body: string }> {
  const headers = token ? bearer(token) : {}
  if (request.websocket) return upgrade(headers)
  if (request.stream) return streamStart(request.url, headers)
  const { websocket: _, stream: __, ...options } = request
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
      for (const secret of [f.owner.user.email, f.owner.user.publicKey, f.secret]) expect(response.body).not.toContain(secret)
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
    const covered = new Set(ROWS.map(row => row.route.replace(/ \(.*\)$/, '')))
    // The OpenAPI UI and its static files are public by design; GET /docs/json stands for them.
    // GET /app* is @fastify/static over web/dist (src/plugins/web.ts): the page's files, no data, no token read; GET / and
    // GET /app stand for it. What it answers depends on whether web/dist is built (which test/web may be doing right now).
    const uncovered = [...registered].filter(route => !covered.has(route) && !/^GET \/(docs(\/|$)|app\*$)/.test(route))
    expect(uncovered).toEqual([])
  })
})
