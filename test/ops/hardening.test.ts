import { connect, type AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'

const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl)
await app.listen({ port: 0, host: '127.0.0.1' })
const { port } = app.server.address() as AddressInfo
const { token } = await createUserWithToken(app, 'ADMIN')

/** Sends raw bytes on a new connection and returns everything received until the server closes it. */
function rawExchange (bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes))
    let received = ''
    socket.on('data', chunk => { received += chunk.toString() })
    socket.on('error', () => {}) // the server closing after its answer may reset
    socket.on('close', () => resolve(received))
    setTimeout(() => { socket.destroy(); reject(new Error(`no close within 5 s; received: ${received}`)) }, 5000)
  })
}

const bodyOf = (raw: string) => JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4))

describe('hardening', () => {
  it('sends nosniff, frame and referrer headers on every answer', async () => {
    for (const url of ['/health', '/nope', '/docs/json']) {
      const response = await app.inject({ url })
      expect(response.headers['x-content-type-options'], url).toBe('nosniff')
      expect(response.headers['x-frame-options'], url).toBe('DENY')
      expect(response.headers['referrer-policy'], url).toBe('no-referrer')
    }
  })

  it('refuses a body over 1 MiB with 413 in the JSON error shape', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ email: 'a@example.test', publicKey: 'x'.repeat(1_100_000) })
    })
    expect(response.statusCode).toBe(413)
    expect(response.json()).toEqual({ error: 'PAYLOAD_TOO_LARGE', message: expect.any(String) })
  })
})

describe('errors the framework raises answer in the service\'s shape with a stable code', () => {
  it('a malformed percent-encoding in the path: 400 BAD_URL, without echoing the URL', async () => {
    for (const url of ['/sessions/%ZZ', `/sessions/%ZZ?access_token=${token}`, '/users/by-public-key/abc%E0%A4%A']) {
      const response = await app.inject({ url, headers: bearer(token) })
      expect(response.statusCode, url).toBe(400)
      expect(response.json(), url).toEqual({ error: 'BAD_URL', message: expect.any(String) })
      expect(response.body).not.toContain(token)
    }
  })

  it('a path parameter over the router\'s length limit: 414 URL_TOO_LONG', async () => {
    const response = await app.inject({ url: `/sessions/${'1'.repeat(200)}`, headers: bearer(token) })
    expect(response.statusCode).toBe(414)
    expect(response.json()).toEqual({ error: 'URL_TOO_LONG', message: expect.any(String) })
  })

  it('bodies that cannot be parsed: INVALID_JSON, UNSUPPORTED_MEDIA_TYPE', async () => {
    const cases: Array<[string, string, number, string]> = [
      ['application/json', '{"email":', 400, 'INVALID_JSON'],
      ['application/json', '', 400, 'INVALID_JSON'],
      ['text/xml', '<login/>', 415, 'UNSUPPORTED_MEDIA_TYPE']
    ]
    for (const [contentType, payload, status, code] of cases) {
      const response = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'content-type': contentType }, payload })
      expect(response.statusCode, contentType + payload).toBe(status)
      expect(response.json(), contentType + payload).toEqual({ error: code, message: expect.any(String) })
      expect(response.body).not.toContain('FST_')
    }
  })

  it('requests that are not valid HTTP: 400 BAD_REQUEST, and 431 HEADERS_TOO_LARGE, then the connection closes', async () => {
    const garbage = await rawExchange('GET /health HTTP/1.1\r\nHost localhost\r\n\r\n')
    expect(garbage).toMatch(/^HTTP\/1\.1 400 /)
    expect(bodyOf(garbage)).toEqual({ error: 'BAD_REQUEST', message: expect.any(String) })

    const huge = await rawExchange(`GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
    expect(huge).toMatch(/^HTTP\/1\.1 431 /)
    expect(bodyOf(huge)).toEqual({ error: 'HEADERS_TOO_LARGE', message: expect.any(String) })
  })
})
