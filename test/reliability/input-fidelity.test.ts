import { afterEach, describe, expect, it } from 'vitest'
import { patchSessionBody } from '../../src/schemas/sessions.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { TestPhone, wsUrl } from '../ws-client.js'

// What the service cannot store exactly as sent is refused, with the path of the
// offending value, rather than stored changed: JSON.parse makes "__proto__" an own
// key that objects built from it drop, 1e999 parses to Infinity that jsonb stores as
// null, and a lone surrogate reaches PostgreSQL as U+FFFD. JSON.stringify produces
// none of these, so every payload here is raw JSON text.

const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl)
await app.listen({ port: 0, host: '127.0.0.1' })
const admin = await createUserWithToken(app, 'ADMIN')

const phones: TestPhone[] = []
afterEach(async () => {
  await Promise.all(phones.splice(0).map(phone => phone.close()))
})

async function phoneOfNewTester () {
  const tester = await createUserWithToken(app)
  const phone = await TestPhone.connect(wsUrl(app), bearer(tester.token))
  phones.push(phone)
  return { phone, tester }
}

async function sessionCount (userId: number): Promise<number> {
  const { rows: [row] } = await app.db.query<{ n: number }>('select count(*)::int as n from sessions where user_id = $1', [userId])
  return row?.n ?? -1
}

async function storedMetadata (sessionId: unknown): Promise<unknown> {
  const { rows: [row] } = await app.db.query<{ metadata: string }>('select metadata::text as metadata from sessions where id = $1', [sessionId])
  return row === undefined ? undefined : JSON.parse(row.metadata)
}

const createSessionFrame = (metadataText: string) => `{"event":"create_session","data":{"metadata":${metadataText}}}`

const rawJson = (method: 'POST' | 'PATCH', url: string, token: string, payload: string) =>
  app.inject({ method, url, headers: { ...bearer(token), 'content-type': 'application/json' }, payload })

describe('create_session metadata over the socket', () => {
  const refused: Array<[string, string, Array<Array<string | number>>]> = [
    ['a top-level __proto__ key', '{"device":"Pixel 9","__proto__":{"x":1}}', [['metadata', '__proto__']]],
    ['a nested __proto__ key', '{"rig":{"mounts":[{"ok":1},{"__proto__":"handlebar"}]}}', [['metadata', 'rig', 'mounts', 1, '__proto__']]],
    ['numbers beyond double range', '{"sampleRateHz":1e999,"offsets":[0,-1e999]}', [['metadata', 'sampleRateHz'], ['metadata', 'offsets', 1]]]
  ]
  for (const [what, metadata, paths] of refused) {
    it(`refuses ${what} with invalid_event_data and the path, creating nothing`, async () => {
      const { phone, tester } = await phoneOfNewTester()
      phone.sendRaw(createSessionFrame(metadata))
      const answer = await phone.expect('error')
      expect(answer).toMatchObject({ code: 'invalid_event_data' })
      expect((answer.issues as Array<{ path: unknown }>).map(issue => issue.path)).toEqual(paths)
      expect(await sessionCount(tester.user.id)).toBe(0)
    })
  }

  it('keeps constructor and prototype keys, which survive storage as sent', async () => {
    const { phone } = await phoneOfNewTester()
    const metadata = '{"constructor":{"prototype":{"x":1}},"prototype":[{"constructor":2}],"big":1e308}'
    phone.sendRaw(createSessionFrame(`{"__proto__":1,${metadata.slice(1)}`))
    expect(await phone.expect('error')).toMatchObject({ code: 'invalid_event_data' })
    phone.sendRaw(createSessionFrame(metadata))
    const created = await phone.expect('session_created')
    expect(await storedMetadata(created.sessionId)).toEqual(JSON.parse(metadata))
  })
})

describe('PATCH /sessions/:id metadata', () => {
  async function endedSession () {
    const { phone, tester } = await phoneOfNewTester()
    phone.send('create_session', { metadata: { device: 'Pixel 9' } })
    const { sessionId } = await phone.expect('session_created')
    phone.send('destroy_session', {})
    await phone.expect('session_destroyed')
    return { sessionId, tester }
  }

  it('refuses numbers beyond double range with 400 naming each path, and changes nothing', async () => {
    const { sessionId, tester } = await endedSession()
    const response = await rawJson('PATCH', `/sessions/${sessionId}`, tester.token, '{"metadata":{"sampleRateHz":-1e999,"notes":{"gain":[1,1e999]}}}')
    expect(response.statusCode).toBe(400)
    expect(response.json()).toEqual({ error: 'VALIDATION_FAILED', message: expect.stringContaining('body.metadata.sampleRateHz: ') })
    expect(response.json().message).toContain('body.metadata.notes.gain.1: ')
    expect(await storedMetadata(sessionId)).toEqual({ device: 'Pixel 9' })
  })

  it('refuses a __proto__ key at any depth with 400 in the service\'s error shape, and changes nothing', async () => {
    const { sessionId, tester } = await endedSession()
    const bodies = ['{"metadata":{"__proto__":{"device":"x"}}}', '{"metadata":{"notes":[{"__proto__":null}]}}']
    for (const body of bodies) {
      // The JSON parser keeps "__proto__" as an own key (JSON.parse never sets a prototype), so the schema names it.
      const response = await rawJson('PATCH', `/sessions/${sessionId}`, tester.token, body)
      expect(response.statusCode, body).toBe(400)
      expect(response.json(), body).toEqual({ error: 'VALIDATION_FAILED', message: expect.stringContaining('__proto__') })
    }
    expect((await rawJson('PATCH', `/sessions/${sessionId}`, tester.token, bodies[1] as string)).json().message).toContain('body.metadata.notes.0.__proto__')
    expect(await storedMetadata(sessionId)).toEqual({ device: 'Pixel 9' })
    // The body schema refuses it with its path too, whatever parses the JSON.
    const paths = bodies.map(body => patchSessionBody.safeParse(JSON.parse(body)).error?.issues.map(issue => issue.path))
    expect(paths).toEqual([[['metadata', '__proto__']], [['metadata', 'notes', 0, '__proto__']]])
  })
})

describe('user text fields', () => {
  const userBody = (name: string, publicKey: string, n: string) =>
    `{"name":"${name}","email":"fidelity-${n}@example.test","publicKey":"${publicKey}"}`

  it('POST /users refuses lone surrogates in name and publicKey with 400 naming the field', async () => {
    for (const [body, field] of [
      [userBody('k\\udc00', 'pk-fidelity-1', '1'), 'body.name: '],
      [userBody('Ann', 'k\\ud800', '2'), 'body.publicKey: '],
      [userBody('Ann', 'k\\udc00x', '3'), 'body.publicKey: '],
      [userBody('Ann\\ud83d', 'pk-fidelity-4', '4'), 'body.name: ']
    ] as const) {
      const response = await rawJson('POST', '/users', admin.token, body)
      expect(response.statusCode, body).toBe(400)
      expect(response.json()).toEqual({ error: 'VALIDATION_FAILED', message: expect.stringContaining(field) })
      expect(response.json().message).toContain('surrogate')
    }
    const { rows: [row] } = await app.db.query<{ n: number }>('select count(*)::int as n from users where email like \'fidelity-%\'')
    expect(row?.n).toBe(0)
  })

  it('keeps surrogate pairs and U+FFFD itself, and a lone surrogate cannot log in as U+FFFD', async () => {
    const created = await rawJson('POST', '/users', admin.token, userBody('Ann \\ud83d\\udeb2', 'k\\uFFFD', '5'))
    expect(created.statusCode).toBe(201)
    expect(created.json()).toMatchObject({ name: 'Ann \u{1F6B2}', publicKey: 'k\uFFFD' })
    for (const publicKey of ['k\\udc00', 'k\\ud800']) {
      const login = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'content-type': 'application/json' }, payload: `{"email":"fidelity-5@example.test","publicKey":"${publicKey}"}` })
      expect(login.statusCode, publicKey).toBe(400)
      expect(login.json().message).toContain('body.publicKey: ')
    }
    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'fidelity-5@example.test', publicKey: 'k\uFFFD' } })
    expect(login.statusCode).toBe(200)
  })
})
