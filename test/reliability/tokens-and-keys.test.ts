import { createHash } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { loggerOptions } from '../../src/logger.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { TcpProxy } from '../fixtures/tcp-proxy.js'
import { makeReadings, TestPhone, wsUrl } from '../ws-client.js'

const databaseUrl = await createTestDatabase()

// The service reaches the database through a proxy, so the log test can also cover a database outage.
const proxy = TcpProxy.forUrl(databaseUrl)
await proxy.start()
afterAll(() => proxy.close())

// Every log line the service writes, at the most verbose level, with the production redaction settings.
const logLines: string[] = []
const { transport: _pretty, ...production } = loggerOptions('trace')
const app = await build(proxy.url(databaseUrl), { LOG_LEVEL: 'trace' }, {
  logger: { ...production, stream: { write: (line: string) => { logLines.push(line) } } }
})
await app.listen({ port: 0, host: '127.0.0.1' })

const phones: TestPhone[] = []
afterAll(async () => { await Promise.all(phones.map(phone => phone.close())) })
async function connect (headers: Record<string, string>, query = ''): Promise<TestPhone> {
  const phone = await TestPhone.connect(wsUrl(app, query), headers)
  phones.push(phone)
  return phone
}

async function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms) })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

async function login (email: string, publicKey: string): Promise<string> {
  const response = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, publicKey } })
  expect(response.statusCode).toBe(200)
  return response.json().accessToken
}

/** Everything a token or key could leak as: the whole token, its secret half, the public key. */
const secrets = new Set<string>()
function remember (token: string, publicKey?: string): void {
  secrets.add(token)
  secrets.add(token.split('.')[1] as string)
  if (publicKey) secrets.add(publicKey)
}

describe('tokens', () => {
  it('are stored as sha256 of their secret: no plaintext token in the database', async () => {
    const { user } = await createUserWithToken(app)
    const token = await login(user.email, user.publicKey)
    remember(token, user.publicKey)
    const [id, secret] = token.split('.') as [string, string]
    const { rows } = await app.db.query('select t.*, row_to_json(t)::text as whole from access_tokens t where user_id = $1', [user.id])
    const row = rows.find(r => r.id === id)
    expect(row.secret_sha256).toEqual(createHash('sha256').update(secret).digest())
    for (const r of rows) {
      expect(r.whole).not.toContain(secret)
      expect(r.whole).not.toContain(Buffer.from(secret).toString('hex'))
    }
    // The same id with another secret of the same shape is refused.
    const forged = `${id}.${'A'.repeat(secret.length)}`
    expect((await app.inject({ url: '/me', headers: bearer(forged) })).statusCode).toBe(401)
    expect((await app.inject({ url: '/me', headers: bearer(token) })).statusCode).toBe(200)
  })

  it('are refused once expired, on every route and the socket', async () => {
    const { user, token } = await createUserWithToken(app)
    remember(token)
    expect((await app.inject({ url: '/me', headers: bearer(token) })).statusCode).toBe(200)
    await app.db.query('update access_tokens set expires_at = now() - interval \'1 millisecond\' where user_id = $1', [user.id])
    expect((await app.inject({ url: '/me', headers: bearer(token) })).statusCode).toBe(401)
    await expect(connect(bearer(token))).rejects.toMatchObject({ statusCode: 401 })
    await expect(connect({}, `?access_token=${encodeURIComponent(token)}`)).rejects.toMatchObject({ statusCode: 401 })
  })

  it('of a deleted user die at once: routes, new upgrades and the open socket', async () => {
    const admin = await createUserWithToken(app, 'ADMIN')
    const { user, token } = await createUserWithToken(app)
    remember(token)
    remember(admin.token)
    const phone = await connect(bearer(token))
    phone.send('create_session', {})
    await phone.expect('session_created')
    const idle = await connect(bearer(token)) // a second socket that never created a session

    const deleted = await app.inject({ method: 'DELETE', url: `/users/${user.id}`, headers: bearer(admin.token) })
    expect(deleted.statusCode).toBe(200)
    expect(deleted.json().deleted).toMatchObject({ users: 1, sessions: 1, accessTokens: 1 })

    expect((await app.inject({ url: '/me', headers: bearer(token) })).statusCode).toBe(401)
    await expect(connect(bearer(token))).rejects.toMatchObject({ statusCode: 401 })
    // Sockets opened before the deletion are closed by the server, session or not.
    await within(Promise.all([phone.closed, idle.closed]), 5000, 'the sockets of a deleted user were not closed')
    expect([phone.closeCode, idle.closeCode]).toEqual([1008, 1008])
    const { rows: [left] } = await app.db.query('select count(*)::int as n from readings r join sessions s on s.id = r.session_id where s.user_id = $1', [user.id])
    expect(left?.n).toBe(0)
  })
})

describe('logs', () => {
  it('never contain a token or a public key, whatever happens', async () => {
    // Log in (right and wrong key), use the token in headers and in ?access_token=, create users,
    // record, fail authentication, and hit a database outage with the token in the URL.
    const admin = await createUserWithToken(app, 'ADMIN')
    remember(admin.token)
    const created = await app.inject({
      method: 'POST',
      url: '/users',
      headers: bearer(admin.token),
      payload: { name: 'Logged', email: 'logged@example.test', publicKey: 'pk-LOGGED-0123456789abcdef' }
    })
    expect(created.statusCode).toBe(201)
    secrets.add('pk-LOGGED-0123456789abcdef')
    const token = await login('logged@example.test', 'pk-LOGGED-0123456789abcdef')
    remember(token)
    expect((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'logged@example.test', publicKey: 'pk-WRONG-0123456789abcdef' } })).statusCode).toBe(401)
    secrets.add('pk-WRONG-0123456789abcdef')
    expect((await app.inject({ url: '/users/by-public-key/pk-LOGGED-0123456789abcdef', headers: bearer(admin.token) })).statusCode).toBe(200)
    expect((await app.inject({ url: `/me?access_token=${token}`, headers: bearer(token) })).statusCode).toBe(200)

    const phone = await connect({}, `?access_token=${encodeURIComponent(token)}`)
    phone.send('create_session', { metadata: { note: 'log test' } })
    await phone.expect('session_created')
    phone.send('write_sensor_readings_batch', { batch_id: 0, sensor_readings: makeReadings(375) })
    await phone.expect('sensor_readings_batch_written')
    await phone.close()
    await expect(connect(bearer(`${token.split('.')[0]}.${'B'.repeat(43)}`))).rejects.toMatchObject({ statusCode: 401 })

    proxy.cut()
    try {
      await expect(connect({}, `?access_token=${encodeURIComponent(token)}`)).rejects.toMatchObject({ statusCode: 503 })
      expect((await app.inject({ url: '/me', headers: bearer(token) })).statusCode).toBe(503)
    } finally {
      proxy.restore()
    }

    // Redaction is not vacuous: the requests above were logged, as route patterns (never a query string).
    expect(logLines.some(line => line.includes('"url":"/ws"'))).toBe(true)
    expect(logLines.some(line => line.includes('Database unavailable'))).toBe(true)
    expect(secrets.size).toBeGreaterThan(10)
    for (const line of logLines) {
      for (const secret of secrets) {
        if (line.includes(secret)) throw new Error(`a log line contains a secret: ${line.slice(0, 500)}`)
      }
    }
  })
})
