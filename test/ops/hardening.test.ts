import { describe, expect, it } from 'vitest'
import { build, createTestDatabase } from '../helper.js'

const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl)

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
    expect(response.json()).toMatchObject({ error: 'PAYLOAD_TOO_LARGE' })
  })
})
