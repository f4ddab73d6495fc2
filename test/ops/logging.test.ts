import { afterAll, describe, expect, it } from 'vitest'
import { loggerOptions } from '../../src/logger.js'
import { TcpProxy } from '../fixtures/tcp-proxy.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'

const lines: string[] = []
// A pino destination: every log line of the app, as written.
const stream = { write: (line: string) => { lines.push(line) } }

const databaseUrl = await createTestDatabase()
const proxy = TcpProxy.forUrl(databaseUrl)
await proxy.start()
afterAll(() => proxy.close())
const { transport: _pretty, ...jsonOptions } = loggerOptions('trace')
const app = await build(proxy.url(databaseUrl), { LOG_LEVEL: 'trace' }, { logger: { ...jsonOptions, stream } })
const { user } = await createUserWithToken(app, 'ADMIN')

const logs = () => lines.join('')

describe('logs', () => {
  it('contain no token, public key or authorization header through a login and its use', async () => {
    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, publicKey: user.publicKey } })
    expect(login.statusCode).toBe(200)
    const token: string = login.json().accessToken
    const secret = token.split('.').at(-1) as string

    expect((await app.inject({ url: '/me', headers: bearer(token) })).statusCode).toBe(200)
    // Only /ws accepts ?access_token=; any other route still logs its URL.
    expect((await app.inject({ url: `/me?access_token=${encodeURIComponent(token)}&x=1` })).statusCode).toBe(401)

    const text = logs()
    expect(text).toContain('"url":"/auth/login"') // the capture works: the login was logged
    expect(text).toContain('"url":"/me?access_token=[Redacted]&x=1"')
    expect(text).not.toContain(secret)
    expect(text).not.toContain(token)
    expect(text).not.toContain(user.publicKey)
    expect(text.toLowerCase()).not.toContain('bearer')
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow()
  })

  it('redact the query token in 5xx logs, and the client gets no internals', async () => {
    const { token } = await createUserWithToken(app, 'ADMIN')
    const before = lines.length
    proxy.cut()
    try {
      // The database being unreachable is a 503 (retry later), logged with the URL like any 5xx.
      const response = await app.inject({ url: `/users?access_token=${token}`, headers: bearer(token) })
      expect(response.statusCode).toBe(503)
      expect(response.json()).toEqual({ error: 'DATABASE_UNAVAILABLE', message: 'The database is unavailable; retry shortly' })
    } finally {
      proxy.restore()
    }
    const failures = lines.slice(before).map(line => JSON.parse(line)).filter(line => line.msg === 'Database unavailable.')
    expect(failures).toHaveLength(1)
    expect(failures[0].request.url).toBe('/users?access_token=[Redacted]')
    expect(failures[0].err.stack).toBeTypeOf('string') // the operator gets the stack, the client does not
    expect(logs()).not.toContain(token.split('.').at(-1))
  })
})
