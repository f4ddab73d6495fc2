import { base58 } from '@scure/base'
import type { FastifyInstance } from 'fastify'
import { describe, expect, it } from 'vitest'
import { createChallengeService } from '../../src/auth/challenges.js'
import { checksumAddress } from '../../src/keys/ethereum.js'
import { insertUser } from '../../src/db/users-repository.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { ed25519Signer, ethereumSigner, type TestSigner } from './signers.js'

const databaseUrl = await createTestDatabase()
// Two instances on one database, as behind a load balancer.
const app = await build(databaseUrl, { CHALLENGE_TTL_SECONDS: '120' })
const other = await build(databaseUrl)
const admin = await createUserWithToken(app, 'ADMIN')

let userCounter = 0
async function register (publicKey: string) {
  const n = ++userCounter
  const response = await app.inject({
    method: 'POST',
    url: '/users',
    headers: bearer(admin.token),
    payload: { name: `Signer ${n}`, email: `signer-${n}@example.test`, publicKey }
  })
  expect(response.statusCode, response.body).toBe(201)
  return response.json()
}

async function challenge (publicKey: string, on: FastifyInstance = app) {
  const response = await on.inject({ method: 'POST', url: '/auth/challenge', payload: { publicKey } })
  expect(response.statusCode, response.body).toBe(200)
  return response.json() as { message: string, publicKey: string, scheme: string, nonce: string, issuedAt: string, expiresAt: string }
}

const verify = (publicKey: string, signature: string, on: FastifyInstance = app, nonce?: string) =>
  on.inject({ method: 'POST', url: '/auth/verify', payload: { publicKey, signature, ...(nonce === undefined ? {} : { nonce }) } })

/** Requests a challenge for someone else's key, as anyone can: public keys are public. */
const attackerChallenge = (publicKey: string) =>
  app.inject({ method: 'POST', url: '/auth/challenge', payload: { publicKey }, remoteAddress: '203.0.113.9' })

async function signedChallenge (signer: TestSigner) {
  const issued = await challenge(signer.publicKey)
  return { issued, signature: signer.sign(issued.message) }
}

const signers = { ethereum: ethereumSigner, ed25519: ed25519Signer }

describe('signature sign-in', () => {
  it('signs in an Ethereum address with an EIP-191 signature, and the token works', async () => {
    const signer = ethereumSigner()
    const user = await register(signer.publicKey.toUpperCase().replace('0X', '0x'))
    expect(user.publicKey).toBe(signer.publicKey)

    const issued = await challenge(signer.publicKey)
    expect(issued).toMatchObject({ publicKey: signer.publicKey, scheme: 'ethereum' })
    expect(issued.nonce).toMatch(/^[0-9a-f]{32}$/)
    expect(new Date(issued.expiresAt).getTime() - new Date(issued.issuedAt).getTime()).toBe(120_000)
    expect(issued.message).toBe([
      'motion-ingest wants you to sign in with your key:',
      signer.publicKey,
      '',
      'Signing proves you hold this key. It works once, for motion-ingest only.',
      '',
      `Nonce: ${issued.nonce}`,
      `Issued At: ${issued.issuedAt}`,
      `Expiration Time: ${issued.expiresAt}`
    ].join('\n'))

    const response = await verify(signer.publicKey, signer.sign(issued.message))
    expect(response.statusCode, response.body).toBe(200)
    const body = response.json()
    expect(body.user).toMatchObject({ id: user.id, publicKey: signer.publicKey })
    expect(new Date(body.expiresAt).getTime()).toBeGreaterThan(Date.now())
    const me = await app.inject({ url: '/me', headers: bearer(body.accessToken) })
    expect(me.json()).toMatchObject({ id: user.id })
  })

  it('signs in an Ed25519 key registered as hex, named in NEAR form and base64, with a base58 signature', async () => {
    const signer = ed25519Signer()
    const user = await register(signer.hex)
    expect(user.publicKey).toBe(signer.near)
    const issued = await challenge(signer.near)
    expect(issued).toMatchObject({ publicKey: signer.near, scheme: 'ed25519' })
    const signature = `ed25519:${base58.encode(Buffer.from(signer.sign(issued.message), 'hex'))}`
    const response = await verify(signer.base64, signature)
    expect(response.statusCode, response.body).toBe(200)
    expect(response.json().user).toMatchObject({ id: user.id })
  })

  it('verifies on one instance a challenge another instance issued', async () => {
    const signer = ethereumSigner()
    const user = await register(signer.publicKey)
    const issued = await challenge(signer.publicKey, app)
    const response = await verify(signer.publicKey, signer.sign(issued.message), other)
    expect(response.statusCode, response.body).toBe(200)
    expect(response.json().user.id).toBe(user.id)
  })

  it('lets a key hold several pending challenges at once (several devices), with or without the nonce', async () => {
    const signer = ed25519Signer()
    await register(signer.publicKey)
    const first = await challenge(signer.publicKey)
    const second = await challenge(signer.publicKey)
    expect(second.nonce).not.toBe(first.nonce)
    expect((await verify(signer.publicKey, signer.sign(first.message))).statusCode).toBe(200)
    expect((await verify(signer.publicKey, signer.sign(second.message), app, second.nonce)).statusCode).toBe(200)
  })
})

describe.each(Object.entries(signers))('a third party requesting challenges for the key (%s)', (_scheme, makeSigner) => {
  it('cannot invalidate the holder\'s pending challenge: it verifies by nonce, and without it within the 20 newest', async () => {
    const signer = makeSigner()
    const user = await register(signer.publicKey)
    const victim = await challenge(signer.publicKey)
    for (let i = 0; i < 6; i++) expect((await attackerChallenge(signer.publicKey)).statusCode).toBe(200)
    const byNonce = await verify(signer.publicKey, signer.sign(victim.message), app, victim.nonce)
    expect(byNonce.statusCode, byNonce.body).toBe(200)
    expect(byNonce.json().user.id).toBe(user.id)

    // An old client that does not send the nonce.
    const again = await challenge(signer.publicKey)
    for (let i = 0; i < 6; i++) await attackerChallenge(signer.publicKey)
    const withoutNonce = await verify(signer.publicKey, signer.sign(again.message))
    expect(withoutNonce.statusCode, withoutNonce.body).toBe(200)
  })

  it('past the 20 newest pending challenges, only the nonce finds it; without it the answer says to send it', async () => {
    const signer = makeSigner()
    await register(signer.publicKey)
    const victim = await challenge(signer.publicKey)
    for (let i = 0; i < 20; i++) await attackerChallenge(signer.publicKey)
    const signature = signer.sign(victim.message)
    const withoutNonce = await verify(signer.publicKey, signature)
    expect(withoutNonce.statusCode).toBe(401)
    expect(withoutNonce.json()).toMatchObject({ error: 'CHALLENGE_NOT_FOUND', message: expect.stringContaining('nonce') })
    expect((await verify(signer.publicKey, signature, app, victim.nonce)).statusCode).toBe(200)
  })
})

describe.each(Object.entries(signers))('verification by nonce (%s)', (_scheme, makeSigner) => {
  it('answers CHALLENGE_NOT_FOUND for an unknown nonce, another key\'s nonce, and a cleaned-up challenge', async () => {
    const signer = makeSigner()
    await register(signer.publicKey)
    const issued = await challenge(signer.publicKey)
    const signature = signer.sign(issued.message)
    const otherKeys = await challenge(makeSigner().publicKey)
    for (const nonce of ['0'.repeat(32), 'not-a-nonce', otherKeys.nonce]) {
      const response = await verify(signer.publicKey, signature, app, nonce)
      expect(response.statusCode, nonce).toBe(401)
      expect(response.json()).toMatchObject({ error: 'CHALLENGE_NOT_FOUND', message: expect.stringContaining('/auth/challenge') })
    }
    await app.db.query('delete from auth_challenges where nonce = $1', [issued.nonce])
    const purged = await verify(signer.publicKey, signature, app, issued.nonce)
    expect(purged.statusCode).toBe(401)
    expect(purged.json().error).toBe('CHALLENGE_NOT_FOUND')
  })

  it('answers INVALID_SIGNATURE for another key\'s signature or an altered message, and the challenge stays good', async () => {
    const signer = makeSigner()
    await register(signer.publicKey)
    const issued = await challenge(signer.publicKey)
    const wrongKey = await verify(signer.publicKey, makeSigner().sign(issued.message), app, issued.nonce)
    expect(wrongKey.statusCode).toBe(401)
    expect(wrongKey.json().error).toBe('INVALID_SIGNATURE')
    const altered = await verify(signer.publicKey, signer.sign(issued.message + ' '), app, issued.nonce)
    expect(altered.json().error).toBe('INVALID_SIGNATURE')
    expect((await verify(signer.publicKey, signer.sign(issued.message), app, issued.nonce)).statusCode).toBe(200)
  })

  it('refuses a replay on either instance and an expired challenge with their reasons', async () => {
    const signer = makeSigner()
    await register(signer.publicKey)
    const { issued, signature } = await signedChallenge(signer)
    expect((await verify(signer.publicKey, signature, app, issued.nonce)).statusCode).toBe(200)
    for (const instance of [app, other]) {
      const replay = await verify(signer.publicKey, signature, instance, issued.nonce)
      expect(replay.statusCode).toBe(401)
      expect(replay.json().error).toBe('CHALLENGE_ALREADY_USED')
    }

    const late = await signedChallenge(signer)
    await app.db.query('update auth_challenges set issued_at = issued_at - interval \'1 hour\', expires_at = now() - interval \'1 second\' where nonce = $1', [late.issued.nonce])
    const expired = await verify(signer.publicKey, late.signature, app, late.issued.nonce)
    expect(expired.statusCode).toBe(401)
    expect(expired.json().error).toBe('CHALLENGE_EXPIRED')
  })

  it('accepts exactly one of two concurrent verifications on two instances', async () => {
    const signer = makeSigner()
    await register(signer.publicKey)
    const { issued, signature } = await signedChallenge(signer)
    const responses = await Promise.all([verify(signer.publicKey, signature, app, issued.nonce), verify(signer.publicKey, signature, other, issued.nonce)])
    expect(responses.map(r => r.statusCode).sort()).toEqual([200, 401])
  })
})

describe.each(Object.entries(signers))('refusals (%s)', (_scheme, makeSigner) => {
  it('refuses a replayed signature: a challenge works once', async () => {
    const signer = makeSigner()
    await register(signer.publicKey)
    const { signature } = await signedChallenge(signer)
    expect((await verify(signer.publicKey, signature)).statusCode).toBe(200)
    for (const instance of [app, other]) {
      const replay = await verify(signer.publicKey, signature, instance)
      expect(replay.statusCode).toBe(401)
      expect(replay.json()).toMatchObject({ error: 'CHALLENGE_ALREADY_USED', message: expect.stringContaining('already used') })
    }
  })

  it('accepts exactly one of two concurrent verifications on two instances', async () => {
    const signer = makeSigner()
    await register(signer.publicKey)
    const { signature } = await signedChallenge(signer)
    const responses = await Promise.all([verify(signer.publicKey, signature, app), verify(signer.publicKey, signature, other)])
    expect(responses.map(r => r.statusCode).sort()).toEqual([200, 401])
  })

  it('refuses an expired challenge', async () => {
    const signer = makeSigner()
    await register(signer.publicKey)
    const { issued, signature } = await signedChallenge(signer)
    await app.db.query('update auth_challenges set issued_at = issued_at - interval \'1 hour\', expires_at = now() - interval \'1 second\' where nonce = $1', [issued.nonce])
    const response = await verify(signer.publicKey, signature)
    expect(response.statusCode).toBe(401)
    expect(response.json()).toMatchObject({ error: 'CHALLENGE_EXPIRED', message: expect.stringContaining('expired') })
  })

  it('refuses a signature made with another key', async () => {
    const signer = makeSigner()
    await register(signer.publicKey)
    const issued = await challenge(signer.publicKey)
    const response = await verify(signer.publicKey, makeSigner().sign(issued.message))
    expect(response.statusCode).toBe(401)
    expect(response.json()).toMatchObject({ error: 'INVALID_SIGNATURE', message: expect.stringContaining('wrong key') })
    // The challenge is still good for its owner.
    expect((await verify(signer.publicKey, signer.sign(issued.message))).statusCode).toBe(200)
  })

  it('refuses a signature over an altered message', async () => {
    const signer = makeSigner()
    await register(signer.publicKey)
    const issued = await challenge(signer.publicKey)
    const later = new Date(Date.now() + 86_400_000).toISOString()
    const tampered = issued.message.replace(`Expiration Time: ${issued.expiresAt}`, `Expiration Time: ${later}`)
    expect(tampered).not.toBe(issued.message)
    const response = await verify(signer.publicKey, signer.sign(tampered))
    expect(response.statusCode).toBe(401)
    expect(response.json()).toMatchObject({ error: 'INVALID_SIGNATURE', message: expect.stringContaining('altered') })
  })

  it('refuses a signature when no challenge was issued for the key', async () => {
    const signer = makeSigner()
    await register(signer.publicKey)
    const response = await verify(signer.publicKey, signer.sign('motion-ingest wants you to sign in with your key:'))
    expect(response.statusCode).toBe(401)
    expect(response.json()).toMatchObject({ error: 'CHALLENGE_NOT_FOUND', message: expect.stringContaining('/auth/challenge') })
  })

  it('issues a challenge for an unregistered key all the same, and refuses it at verify', async () => {
    const stranger = makeSigner()
    const issued = await challenge(stranger.publicKey)
    expect(Object.keys(issued).sort()).toEqual(['expiresAt', 'issuedAt', 'message', 'nonce', 'publicKey', 'scheme'])
    const response = await verify(stranger.publicKey, stranger.sign(issued.message))
    expect(response.statusCode).toBe(401)
    expect(response.json().error).toBe('UNKNOWN_PUBLIC_KEY')
  })
})

describe('bad requests', () => {
  it('refuses keys that cannot sign, and says which forms can', async () => {
    const response = await app.inject({ method: 'POST', url: '/auth/challenge', payload: { publicKey: 'pk-legacy' } })
    expect(response.statusCode).toBe(400)
    expect(response.json()).toMatchObject({ error: 'UNSUPPORTED_PUBLIC_KEY', message: expect.stringContaining('/auth/login') })
    const checksum = await app.inject({ method: 'POST', url: '/auth/challenge', payload: { publicKey: '0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed' } })
    expect(checksum.statusCode).toBe(400)
    expect(checksum.json().error).toBe('INVALID_PUBLIC_KEY')
  })

  it('refuses malformed signatures with 400 naming the expected format', async () => {
    const eth = ethereumSigner()
    const ed = ed25519Signer()
    const cases: Array<[string, string, string]> = [[eth.publicKey, '0x1234', '130 hex'], [ed.publicKey, 'abcd', 'Ed25519 signature']]
    for (const [publicKey, signature, expected] of cases) {
      const response = await verify(publicKey, signature)
      expect(response.statusCode).toBe(400)
      expect(response.json()).toMatchObject({ error: 'MALFORMED_SIGNATURE', message: expect.stringContaining(expected) })
    }
  })

  it('rejects bodies with missing or extra fields', async () => {
    expect((await app.inject({ method: 'POST', url: '/auth/challenge', payload: {} })).statusCode).toBe(400)
    expect((await app.inject({ method: 'POST', url: '/auth/verify', payload: { publicKey: ethereumSigner().publicKey } })).statusCode).toBe(400)
    expect((await app.inject({ method: 'POST', url: '/auth/verify', payload: { publicKey: 'x', signature: 'y', extra: 'z' } })).statusCode).toBe(400)
  })
})

describe('stored keys and housekeeping', () => {
  it('signs in a user stored before normalisation under a checksummed address', async () => {
    const signer = ethereumSigner()
    const legacy = await insertUser(app.db, { name: 'Legacy', email: 'legacy-eth@example.test', publicKey: checksumAddress(signer.publicKey), role: 'BETATESTER' })
    const issued = await challenge(signer.publicKey)
    const response = await verify(signer.publicKey, signer.sign(issued.message))
    expect(response.statusCode, response.body).toBe(200)
    expect(response.json().user.id).toBe(legacy.id)
  })

  it('deletes challenges that expired over an hour ago when it next issues one, and keeps newer ones', async () => {
    const stale = ethereumSigner().publicKey
    const recent = ethereumSigner().publicKey
    await app.db.query(
      `insert into auth_challenges (nonce, public_key, message, issued_at, expires_at) values
       ('stale-nonce', $1, 'm', now() - interval '3 hours', now() - interval '2 hours'),
       ('recent-nonce', $2, 'm', now() - interval '20 minutes', now() - interval '10 minutes')`, [stale, recent])
    const service = createChallengeService(app.db, { ttlSeconds: 60, maxPending: 1000 })
    await service.issue(ethereumSigner().publicKey)
    const { rows } = await app.db.query('select nonce from auth_challenges where nonce in ($1, $2)', ['stale-nonce', 'recent-nonce'])
    expect(rows.map(row => row.nonce)).toEqual(['recent-nonce'])
  })
})
