import { afterAll, describe, expect, it } from 'vitest'
import { loggerOptions, loggedUrl } from '../../src/logger.js'
import { TcpProxy } from '../fixtures/tcp-proxy.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { TestPhone, wsUrl } from '../ws-client.js'

const lines: string[] = []
// A pino destination: every log line of the app, as written.
const stream = { write: (line: string) => { lines.push(line) } }

const databaseUrl = await createTestDatabase()
const proxy = TcpProxy.forUrl(databaseUrl)
await proxy.start()
afterAll(() => proxy.close())
const { transport: _pretty, ...jsonOptions } = loggerOptions('trace')
const app = await build(proxy.url(databaseUrl), { LOG_LEVEL: 'trace' }, { logger: { ...jsonOptions, stream } })
await app.listen({ port: 0, host: '127.0.0.1' })
const { user } = await createUserWithToken(app, 'ADMIN')

const logs = () => lines.join('')
const parsedSince = (index: number) => lines.slice(index).map(line => JSON.parse(line))
/** The URLs log lines carried for requests, whatever the message. */
const loggedUrls = (index: number) => parsedSince(index).filter(line => line.req).map(line => line.req.url as string)

async function login () {
  const response = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, publicKey: user.publicKey } })
  expect(response.statusCode).toBe(200)
  return response.json().accessToken as string
}

describe('logs', () => {
  it('contain no token, public key or authorization header through a login and its use', async () => {
    const token = await login()
    const secret = token.split('.').at(-1) as string

    expect((await app.inject({ url: '/me', headers: bearer(token) })).statusCode).toBe(200)
    // Only /ws accepts ?access_token=; elsewhere it is refused, and never logged.
    expect((await app.inject({ url: `/me?access_token=${encodeURIComponent(token)}&x=1` })).statusCode).toBe(401)

    const text = logs()
    expect(text).toContain('"url":"/auth/login"') // the capture works: the login was logged
    expect(text).toContain('"url":"/me"')
    expect(text).not.toContain(secret)
    expect(text).not.toContain(token)
    expect(text).not.toContain(user.publicKey)
    expect(text.toLowerCase()).not.toContain('bearer')
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow()
  })

  it('carry the route pattern, never the query or path parameters, however the URL is encoded', async () => {
    const token = await login()
    const phoneToken = (await createUserWithToken(app, 'BETATESTER')).token
    const secrets = [token, phoneToken].map(secret => secret.split('.').at(-1) as string)
    const before = lines.length

    // The WebSocket route takes the token from the query, in any encoding the query parser decodes.
    for (const query of [`?access_token=${encodeURIComponent(phoneToken)}`, `?access%5Ftoken=${encodeURIComponent(phoneToken)}`, `?%61ccess_token=${encodeURIComponent(phoneToken)}`]) {
      const phone = await TestPhone.connect(wsUrl(app, query))
      await phone.close()
    }
    // The public key in the path, plain and with a percent-encoded route segment.
    for (const path of [`/users/by-public-key/${user.publicKey}`, `/users/%62y-public-key/${user.publicKey}`, `/users/by-public-key/${encodeURIComponent(user.publicKey)}?access_token=${token}`]) {
      const response = await app.inject({ url: path, headers: bearer(token) })
      expect(response.statusCode, path).toBe(200)
    }
    // An ingest key in the path, as Sensor Logger sends it (unknown here: refused, but logged all the same).
    const ingestKey = `mi_ik_${'Z'.repeat(40)}`
    for (const path of [`/ingest/sensor-logger/${ingestKey}`, `/ingest/%73ensor-logger/${ingestKey}`]) {
      const response = await app.inject({ method: 'POST', url: path, headers: { 'content-type': 'application/json' }, payload: '{"messageId":0,"sessionId":"s","deviceId":"d","payload":[]}' })
      expect(response.statusCode, path).toBeLessThan(500)
    }
    expect((await app.inject({ url: `/ingest/sensor-logger/${ingestKey}` })).statusCode).toBe(404) // wrong method
    // Matching no route: the wrong method, a bad URL, a path that does not exist.
    expect((await app.inject({ method: 'DELETE', url: `/users/by-public-key/${user.publicKey}?access_token=${token}` })).statusCode).toBe(404)
    expect((await app.inject({ url: `/users/by-public-key/${user.publicKey}%ZZ?access_token=${token}` })).statusCode).toBe(400)
    expect((await app.inject({ url: `/nope?access_token=${token}` })).statusCode).toBe(404)

    const urls = loggedUrls(before)
    expect(new Set(urls)).toEqual(new Set(['/ws', '/users/by-public-key/:publicKey', '/ingest/sensor-logger/:ingestKey', '/ingest/…', '/users/…', '/nope']))
    expect(urls.filter(url => url === '/ws')).toHaveLength(3)
    const text = logs()
    for (const secret of [...secrets, ingestKey]) expect(text).not.toContain(secret)
    expect(text).not.toContain(user.publicKey)
    expect(text).not.toContain(encodeURIComponent(user.publicKey))
  })

  it('carry the route pattern in error logs too, and the client gets no internals', async () => {
    const { token } = await createUserWithToken(app, 'ADMIN')
    const before = lines.length
    proxy.cut()
    try {
      // The database being unreachable is a 503 (retry later), logged with the request like any 5xx.
      for (const url of [`/users/by-public-key/${user.publicKey}?access_token=${token}`, `/users/%62y-public-key/${user.publicKey}?access%5Ftoken=${token}`]) {
        const response = await app.inject({ url, headers: bearer(token) })
        expect(response.statusCode).toBe(503)
        expect(response.json()).toEqual({ error: 'DATABASE_UNAVAILABLE', message: 'The database is unavailable; retry shortly' })
      }
    } finally {
      proxy.restore()
    }
    const failures = parsedSince(before).filter(line => line.msg === 'Database unavailable.')
    expect(failures).toHaveLength(2)
    for (const failure of failures) {
      expect(failure.req).toMatchObject({ method: 'GET', url: '/users/by-public-key/:publicKey' })
      expect(failure.err.stack).toBeTypeOf('string') // the operator gets the stack, the client does not
    }
    expect(logs()).not.toContain(token.split('.').at(-1))
    expect(logs()).not.toContain(user.publicKey)
  })
})

describe('loggedUrl', () => {
  it('is the route pattern when one matched, else the first path segment without query or fragment', () => {
    expect(loggedUrl({ url: '/sessions/12?x=1', routeOptions: { url: '/sessions/:id' } })).toBe('/sessions/:id')
    expect(loggedUrl({ url: '/nope?access_token=abc' })).toBe('/nope')
    expect(loggedUrl({ url: '/nope/?x' })).toBe('/nope/')
    expect(loggedUrl({ url: '/' })).toBe('/')
    expect(loggedUrl({ url: '/?access_token=abc' })).toBe('/')
    expect(loggedUrl({ url: '/ingest/sensor-logger/secret-key' })).toBe('/ingest/…')
    expect(loggedUrl({ url: '/a#b/c' })).toBe('/a')
    expect(loggedUrl({ url: 'http://host/x?token=1' })).toBe('(not a path)')
  })
})
