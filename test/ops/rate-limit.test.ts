import { describe, expect, it } from 'vitest'
import { build, createTestDatabase, createUserWithToken } from '../helper.js'

const LIMIT = 3
const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl, { AUTH_RATE_LIMIT_PER_MINUTE: String(LIMIT) })
const { user } = await createUserWithToken(app)

const login = (remoteAddress: string, headers: Record<string, string> = {}, publicKey = 'wrong-key') =>
  app.inject({ method: 'POST', url: '/auth/login', remoteAddress, headers, payload: { email: user.email, publicKey } })

describe('rate limit on /auth/*', () => {
  it('answers 429 RATE_LIMITED after AUTH_RATE_LIMIT_PER_MINUTE attempts from one IP, even with the right key', async () => {
    const ip = '203.0.113.10'
    for (let attempt = 1; attempt <= LIMIT; attempt++) {
      const response = await login(ip)
      expect(response.statusCode, `attempt ${attempt}`).toBe(401)
      expect(response.headers['x-ratelimit-remaining']).toBe(String(LIMIT - attempt))
    }
    const limited = await login(ip, {}, user.publicKey)
    expect(limited.statusCode).toBe(429)
    expect(limited.json()).toEqual({ error: 'RATE_LIMITED', message: expect.stringMatching(/^Too many authentication attempts; retry in \d+ (seconds?|minute)$/) })
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0)
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60)

    // Another client is not affected, and the limited client can still use the rest of the API.
    expect((await login('203.0.113.11', {}, user.publicKey)).statusCode).toBe(200)
    for (let i = 0; i < LIMIT * 3; i++) {
      expect((await app.inject({ url: '/health', remoteAddress: ip })).statusCode).toBe(200)
    }
    expect((await app.inject({ url: '/me', remoteAddress: ip })).statusCode).toBe(401)
  })

  it('cannot be dodged with a forged X-Forwarded-For from an untrusted address', async () => {
    const statuses = []
    for (let attempt = 0; attempt <= LIMIT; attempt++) {
      statuses.push((await login('198.51.100.20', { 'x-forwarded-for': `192.0.2.${attempt}` })).statusCode)
    }
    expect(statuses).toEqual([...Array(LIMIT).fill(401), 429])
  })

  it('counts clients behind a trusted proxy by their forwarded address', async () => {
    // 10.0.0.0/8 is in TRUST_PROXY's default (private networks): a load balancer in front of the service.
    const proxy = '10.1.2.3'
    for (let client = 0; client <= LIMIT; client++) {
      expect((await login(proxy, { 'x-forwarded-for': `198.51.100.${100 + client}` })).statusCode).toBe(401)
    }
    const statuses = []
    for (let attempt = 0; attempt <= LIMIT; attempt++) {
      statuses.push((await login(proxy, { 'x-forwarded-for': '198.51.100.200' })).statusCode)
    }
    expect(statuses).toEqual([...Array(LIMIT).fill(401), 429])
  })
})
