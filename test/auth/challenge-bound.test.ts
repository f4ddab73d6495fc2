import { describe, expect, it } from 'vitest'
import { build, createTestDatabase } from '../helper.js'
import { ed25519Signer, ethereumSigner } from './signers.js'

const databaseUrl = await createTestDatabase()
// Two instances sharing the bound, as behind a load balancer.
const app = await build(databaseUrl, { CHALLENGE_MAX_PENDING: '3' })
const other = await build(databaseUrl, { CHALLENGE_MAX_PENDING: '3' })

const requestChallenge = (publicKey: string, on = app) => on.inject({ method: 'POST', url: '/auth/challenge', payload: { publicKey } })

describe('the bound on pending challenges', () => {
  it('refuses new challenges with 503 at the bound, never evicting a pending one, and frees room as they are used or expire', async () => {
    const holders = [ethereumSigner(), ed25519Signer(), ethereumSigner()]
    const issued = []
    for (const [i, holder] of holders.entries()) {
      const response = await requestChallenge(holder.publicKey, i === 1 ? other : app)
      expect(response.statusCode, response.body).toBe(200)
      issued.push(response.json())
    }

    for (const on of [app, other]) {
      const refused = await requestChallenge(ethereumSigner().publicKey, on)
      expect(refused.statusCode).toBe(503)
      expect(refused.json()).toEqual({ error: 'TOO_MANY_PENDING_CHALLENGES', message: expect.stringContaining('retry') })
    }
    const { rows: [count] } = await app.db.query('select count(*)::int as n from auth_challenges')
    expect(count.n).toBe(3)

    // Every pending challenge is still there: the unregistered keys get as far as UNKNOWN_PUBLIC_KEY, which consumes them.
    const first = await app.inject({
      method: 'POST',
      url: '/auth/verify',
      payload: { publicKey: holders[0]!.publicKey, signature: holders[0]!.sign(issued[0].message), nonce: issued[0].nonce }
    })
    expect(first.json().error).toBe('UNKNOWN_PUBLIC_KEY')
    expect((await requestChallenge(ethereumSigner().publicKey)).statusCode).toBe(200)
    expect((await requestChallenge(ethereumSigner().publicKey)).statusCode).toBe(503)

    await app.db.query('update auth_challenges set issued_at = issued_at - interval \'1 hour\', expires_at = now() - interval \'1 second\' where nonce = $1', [issued[1].nonce])
    expect((await requestChallenge(ethereumSigner().publicKey, other)).statusCode).toBe(200)

    const third = await app.inject({
      method: 'POST',
      url: '/auth/verify',
      payload: { publicKey: holders[2]!.publicKey, signature: holders[2]!.sign(issued[2].message), nonce: issued[2].nonce }
    })
    expect(third.json().error).toBe('UNKNOWN_PUBLIC_KEY')
  })
})
