import { describe, expect, it } from 'vitest'
import { insertUser } from '../../src/db/users-repository.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { ed25519Signer, ethereumSigner } from './signers.js'

const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl)
const locked = await build(databaseUrl, { ALLOW_PUBLIC_KEY_LOGIN: 'false' })
const admin = await createUserWithToken(app, 'ADMIN')

const login = (email: string, publicKey: string, on = app) =>
  on.inject({ method: 'POST', url: '/auth/login', payload: { email, publicKey } })

const createUser = (payload: Record<string, string>) =>
  app.inject({ method: 'POST', url: '/users', headers: bearer(admin.token), payload })

describe('ALLOW_PUBLIC_KEY_LOGIN=false', () => {
  it('refuses public-key login with 403 even for the right email and key, while signature sign-in works', async () => {
    const signer = ed25519Signer()
    expect((await createUser({ name: 'Off', email: 'off@example.test', publicKey: signer.publicKey })).statusCode).toBe(201)
    expect((await login('off@example.test', signer.publicKey, app)).statusCode).toBe(200)

    const refused = await login('off@example.test', signer.publicKey, locked)
    expect(refused.statusCode).toBe(403)
    expect(refused.json()).toMatchObject({ error: 'PUBLIC_KEY_LOGIN_DISABLED', message: expect.stringContaining('/auth/challenge') })

    const issued = (await locked.inject({ method: 'POST', url: '/auth/challenge', payload: { publicKey: signer.publicKey } })).json()
    const verified = await locked.inject({ method: 'POST', url: '/auth/verify', payload: { publicKey: signer.publicKey, signature: signer.sign(issued.message) } })
    expect(verified.statusCode, verified.body).toBe(200)
  })
})

describe('public-key login with normalised keys', () => {
  it('accepts any spelling of an Ed25519 key and any case of an Ethereum address', async () => {
    const ed = ed25519Signer()
    await createUser({ name: 'Ed', email: 'ed@example.test', publicKey: ed.base64 })
    for (const form of [ed.near, ed.hex, ed.base64]) expect((await login('ed@example.test', form)).statusCode, form).toBe(200)

    const eth = ethereumSigner()
    await createUser({ name: 'Eth', email: 'eth@example.test', publicKey: eth.publicKey })
    for (const form of [eth.publicKey, eth.publicKey.toUpperCase().replace('0X', '0x')]) expect((await login('eth@example.test', form)).statusCode).toBe(200)
    expect((await login('eth@example.test', ethereumSigner().publicKey)).statusCode).toBe(401)
  })

  it('still lets in users stored under a key in another form, or an opaque key, before normalisation', async () => {
    const ed = ed25519Signer()
    await insertUser(app.db, { name: 'Old hex', email: 'old-hex@example.test', publicKey: ed.hex, role: 'BETATESTER' })
    await insertUser(app.db, { name: 'Old opaque', email: 'old-opaque@example.test', publicKey: 'beta-key-0042', role: 'BETATESTER' })
    expect((await login('old-hex@example.test', ed.hex)).statusCode).toBe(200)
    expect((await login('old-hex@example.test', ed.near)).statusCode).toBe(200)
    expect((await login('old-opaque@example.test', ' beta-key-0042 ')).statusCode).toBe(200)
    expect((await login('old-opaque@example.test', 'beta-key-0043')).statusCode).toBe(401)
  })
})

describe('user creation stores one form per key', () => {
  it('stores the canonical form, refuses the same key in another spelling, and finds it by any spelling', async () => {
    const ed = ed25519Signer()
    const created = await createUser({ name: 'One', email: 'one@example.test', publicKey: ed.hex })
    expect(created.json().publicKey).toBe(ed.near)
    const duplicate = await createUser({ name: 'Two', email: 'two@example.test', publicKey: ed.base64 })
    expect(duplicate.statusCode).toBe(409)
    expect(duplicate.json().message).toContain('public key')
    const found = await app.inject({ url: `/users/by-public-key/${encodeURIComponent(ed.near)}`, headers: bearer(admin.token) })
    expect(found.json()).toMatchObject({ id: created.json().id })
    const byHex = await app.inject({ url: `/users/by-public-key/${ed.hex}`, headers: bearer(admin.token) })
    expect(byHex.json()).toMatchObject({ id: created.json().id })
  })

  it('refuses a mistyped checksummed address and a malformed ed25519: key with 400', async () => {
    for (const publicKey of ['0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed', 'ed25519:abc']) {
      const response = await createUser({ name: 'Typo', email: 'typo@example.test', publicKey })
      expect(response.statusCode, publicKey).toBe(400)
      expect(response.json().message).toContain('publicKey')
    }
  })
})
