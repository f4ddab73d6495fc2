import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { TcpProxy } from '../fixtures/tcp-proxy.js'
import { build, createTestDatabase } from '../helper.js'

const CHECK_TIMEOUT_MS = 300
const databaseUrl = await createTestDatabase()
const proxy = TcpProxy.forUrl(databaseUrl)
await proxy.start()
afterAll(() => proxy.close())
const app = await build(proxy.url(databaseUrl), { DB_CHECK_TIMEOUT_MS: String(CHECK_TIMEOUT_MS) })
// A hung query keeps a pooled client until bytes flow again; app.close() waits for it.
afterEach(() => proxy.restore())

describe('/health against a database that goes away', () => {
  it('is 200 while the database answers', async () => {
    const response = await app.inject({ url: '/health' })
    expect(response.statusCode).toBe(200)
    expect(response.json()).toEqual({ status: 'ok', database: 'ok' })
  })

  it('turns 503 with a reason when connections are refused, and 200 again when they are not', async () => {
    proxy.cut()
    const down = await app.inject({ url: '/health' })
    expect(down.statusCode).toBe(503)
    const body = down.json()
    expect(body.status).toBe('unavailable')
    expect(body.database).toMatch(/connection reset|connection refused|database unreachable/)
    // The reason is public: it must not reveal where the database lives.
    expect(body.database).not.toContain('127.0.0.1')
    expect(body.database).not.toContain(String(proxy.port))

    proxy.restore()
    const up = await app.inject({ url: '/health' })
    expect(up.statusCode).toBe(200)
  })

  it('turns 503 within the check timeout when the database stops answering', async () => {
    await app.inject({ url: '/health' }) // leaves an idle pooled connection through the proxy
    proxy.hang()
    const started = Date.now()
    const response = await app.inject({ url: '/health' })
    const elapsed = Date.now() - started
    expect(response.statusCode).toBe(503)
    expect(response.json()).toEqual({ status: 'unavailable', database: `no answer within ${CHECK_TIMEOUT_MS} ms` })
    expect(elapsed).toBeGreaterThanOrEqual(CHECK_TIMEOUT_MS - 20)
    expect(elapsed).toBeLessThan(CHECK_TIMEOUT_MS + 1500)
  })

  it('keeps /status and /metrics answering without the database', async () => {
    proxy.cut()
    const status = await app.inject({ url: '/status' })
    expect(status.statusCode).toBe(200)
    expect(status.json()).toMatchObject({ service: 'motion-ingest', activeSessions: null, openSockets: 0 })
    const metrics = await app.inject({ url: '/metrics' })
    expect(metrics.statusCode).toBe(200)
    expect(metrics.body).toMatch(/^motion_ingest_active_sessions nan$/im)

    proxy.restore()
    expect((await app.inject({ url: '/status' })).json().activeSessions).toBe(0)
  })
})
