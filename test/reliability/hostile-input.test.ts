import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { TestPhone, wsUrl } from '../ws-client.js'
import { serverFrame, type ServerFrame } from './server-frames.js'

/**
 * Fixed seeds keep CI deterministic; FC_SEED=<n> explores other inputs
 * (a failure prints the seed and path that replay it).
 */
const seed = (fixed: number) => Number(process.env.FC_SEED) || fixed

// Small batches, so "every wrong length" and the right one are all a few readings away.
const BATCH = 5
const MAX_PAYLOAD = 65_536
const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl, {
  SENSOR_READINGS_BATCH_SIZE: String(BATCH),
  WS_MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD),
  WS_MAX_CONNECTIONS_PER_USER: '1000'
})
await app.listen({ port: 0, host: '127.0.0.1' })
const admin = await createUserWithToken(app, 'ADMIN')
const tester = await createUserWithToken(app, 'BETATESTER')
const protectedUserIds = new Set([admin.user.id, tester.user.id])

const phones: TestPhone[] = []
afterAll(async () => { await Promise.all(phones.map(phone => phone.close())) })
async function connect (): Promise<TestPhone> {
  const phone = await TestPhone.connect(wsUrl(app), bearer(tester.token))
  phones.push(phone)
  return phone
}

async function readingsCount (): Promise<number> {
  const { rows: [row] } = await app.db.query<{ n: number }>('select count(*)::int as n from readings')
  return row?.n ?? -1
}

/** (sessionId, batchId) pairs the server acknowledged: the only batches allowed to be in the database. */
const acked = new Set<string>()
/** How often each answer was seen, to show the generators reach every branch. */
const seen = new Map<string, number>()

/** Asserts the answer is a documented event, never an internal error, and remembers acks. */
function checkAnswer (frame: unknown, cause?: WireFrame): ServerFrame {
  const parsed = serverFrame.safeParse(frame)
  const sent = cause && ('text' in cause ? cause.text : `binary ${cause.binary.length} bytes`).slice(0, 300)
  if (!parsed.success) throw new Error(`undocumented answer ${JSON.stringify(frame).slice(0, 300)} to ${sent}: ${parsed.error.message}`)
  if (parsed.data.event === 'error' && parsed.data.data.code === 'internal_error') throw new Error(`internal_error answering ${sent}`)
  const kind = parsed.data.event === 'error' ? `error:${parsed.data.data.code}` : parsed.data.event
  seen.set(kind, (seen.get(kind) ?? 0) + 1)
  if (parsed.data.event === 'sensor_readings_batch_written') acked.add(`${parsed.data.data.sessionId}:${parsed.data.data.batchId}`)
  return parsed.data
}

// ---------------------------------------------------------------- generators

/** A number token JSON.stringify cannot produce (1e999 parses to Infinity), spliced in after stringify. */
const RAW = /"@@RAW\((.*?)\)@@"/g
const raw = (token: string) => `@@RAW(${token})@@`
const toText = (value: unknown) => JSON.stringify(value).replace(RAW, '$1')

const nested = (depth: number, leaf: unknown = 0) => {
  let value = leaf
  for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { a: value }
  return value
}

/** Text PostgreSQL cannot take as is: NUL, unpaired surrogates. */
const nastyText = fc.constantFrom('\u0000', 'a\u0000b', '\ud800', 'x\udfff', '\ud83d', 'ok\ud83d\ude00', '\uffff', '\u202e')

const weird = fc.oneof(
  nastyText,
  fc.constantFrom('NaN', 'Infinity', '-Infinity', 'nan', '1e999', '', ' ', '0x10', '١٢٣', 'null', 'true', '{}', '2026-13-45T99:99:99Z',
    'Accelerometer ', 'accelerometer', 'ACCELEROMETER', '__proto__', 'constructor'),
  fc.constantFrom(raw('1e999'), raw('-1e999'), raw('123456789012345678901234567890'), raw('-0'), raw('1E+308'), raw('4.9e-325')),
  fc.constantFrom(null, true, false, 0, -1, 1.5, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 2 ** 31, -(2 ** 63), 5e-324, [], {}),
  fc.constantFrom({ __proto__: { polluted: true } }, JSON.parse('{"__proto__": {"polluted": true}}')),
  fc.integer({ min: 1, max: 300 }).map(depth => nested(depth)),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.jsonValue({ maxDepth: 3 })
)

const validTimestamp = fc.oneof(
  fc.integer({ min: Date.now() - 86_400_000, max: Date.now() }),
  fc.double({ min: Date.now() - 86_400_000, max: Date.now(), noNaN: true }),
  fc.integer({ min: Date.now() - 86_400_000, max: Date.now() }).map(ms => new Date(ms).toISOString())
)
const finite = fc.double({ noNaN: true, noDefaultInfinity: true })
const validReading = fc.record({
  timestamp: validTimestamp,
  sensor: fc.constantFrom('Accelerometer', 'Gyroscope', 'Magnetometer'),
  xAxis: finite,
  yAxis: finite,
  zAxis: finite
})
const FIELDS = ['timestamp', 'sensor', 'xAxis', 'yAxis', 'zAxis', 'extra'] as const
const hostileReading = fc.oneof(
  { arbitrary: validReading, weight: 3 },
  { arbitrary: fc.tuple(validReading, fc.constantFrom(...FIELDS), weird).map(([r, field, value]) => ({ ...r, [field]: value })), weight: 3 },
  { arbitrary: fc.tuple(validReading, fc.constantFrom(...FIELDS)).map(([r, field]) => { const copy: Record<string, unknown> = { ...r }; delete copy[field]; return copy }), weight: 1 },
  { arbitrary: weird, weight: 1 }
)
const batchId = fc.oneof(
  { arbitrary: fc.nat({ max: 50 }), weight: 4 },
  { arbitrary: weird, weight: 1 },
  { arbitrary: fc.constantFrom(-1, 2 ** 31, 2_147_483_647, 1e21, raw('1e999')), weight: 1 }
)
const batchFrame = fc.record({
  event: fc.constant('write_sensor_readings_batch'),
  data: fc.record({
    batch_id: batchId,
    // every length around the right one, and far off; each reading valid or not
    sensor_readings: fc.oneof(
      { arbitrary: fc.array(hostileReading, { minLength: 0, maxLength: 2 * BATCH + 2 }), weight: 5 },
      { arbitrary: fc.array(validReading, { minLength: BATCH, maxLength: BATCH }), weight: 2 },
      { arbitrary: weird, weight: 1 }
    )
  }, { requiredKeys: [] })
})
const commandFrame = fc.record({
  event: fc.constantFrom('create_session', 'destroy_session'),
  data: fc.oneof(
    fc.constant({}),
    fc.record({ metadata: fc.oneof(fc.jsonValue({ maxDepth: 4 }), weird) }, { requiredKeys: [] }),
    fc.record({ totalSensorReadingsSent: fc.oneof(fc.nat(), weird) }, { requiredKeys: [] }),
    fc.constant({ metadata: nested(300) }),
    fc.constant({ metadata: { notes: 'x'.repeat(20_000) } }),
    weird
  )
})
const anyFrame = fc.record({
  event: fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('create_session', 'write_sensor_readings_batch', 'destroy_session'), weird),
  data: fc.oneof(fc.jsonValue({ maxDepth: 3 }), weird)
}, { requiredKeys: [] })

/** One frame as the wire sees it: text or binary, well-formed or not. */
type WireFrame = { text: string } | { binary: Uint8Array }
const textFrame = (arb: fc.Arbitrary<unknown>) => arb.map(value => ({ text: toText(value) }) as WireFrame)
const wireFrame: fc.Arbitrary<WireFrame> = fc.oneof(
  { arbitrary: textFrame(batchFrame), weight: 6 },
  { arbitrary: textFrame(commandFrame), weight: 3 },
  { arbitrary: textFrame(anyFrame), weight: 3 },
  { arbitrary: textFrame(fc.jsonValue({ maxDepth: 4 })), weight: 1 },
  // broken JSON: a valid frame cut short or with a byte changed
  {
    arbitrary: fc.tuple(textFrame(batchFrame), fc.nat(), fc.string({ unit: 'binary', minLength: 1, maxLength: 3 }))
      .map(([f, at, junk]) => {
        const text = (f as { text: string }).text
        const cut = at % text.length
        return { text: at % 2 ? text.slice(0, cut) : text.slice(0, cut) + junk + text.slice(cut + 1) }
      }),
    weight: 2
  },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 200 }).map(text => ({ text })), weight: 2 },
  // deep nesting that still parses: V8's JSON.parse is iterative, JSON.stringify is not
  { arbitrary: fc.integer({ min: 1000, max: 30_000 }).map(depth => ({ text: '['.repeat(depth) + ']'.repeat(depth) })), weight: 1 },
  {
    arbitrary: fc.integer({ min: 1000, max: 20_000 })
      .map(depth => ({ text: `{"event":"create_session","data":{"metadata":{"deep":${'['.repeat(depth)}${']'.repeat(depth)}}}}` })),
    weight: 1
  },
  { arbitrary: fc.uint8Array({ maxLength: 300 }).map(binary => ({ binary })), weight: 1 }
)

function send (phone: TestPhone, frame: WireFrame): void {
  if ('text' in frame) phone.sendRaw(frame.text)
  else phone.sendRaw(Buffer.from(frame.binary), true)
}

// ---------------------------------------------------------------- properties

describe('hostile frames on the recording socket', () => {
  it('answer every frame with exactly one documented event, in order, and store only acknowledged batches', async () => {
    const before = await readingsCount()
    let phone = await connect()
    let frames = 0
    let dirty = false
    await fc.assert(fc.asyncProperty(fc.array(wireFrame, { minLength: 1, maxLength: 8 }), async batch => {
      // After a failed run (while fast-check shrinks) answers may be left over: start clean.
      if (dirty) phone = await connect()
      dirty = true
      // Start each run with a session, so batches get past "session_not_found" to validation.
      phone.send('create_session', {})
      expect(['session_created', 'session_already_exist']).toContain(checkAnswer(await phone.next(5000)).event)
      for (const frame of batch) send(phone, frame)
      for (const frame of batch) {
        const answer = checkAnswer(await phone.next(5000), frame)
        if ('binary' in frame) expect(answer).toMatchObject({ event: 'error', data: { code: 'binary_frames_not_supported' } })
      }
      frames += batch.length + 1
      expect(phone.closeCode).toBeUndefined()
      dirty = false
    }), { numRuns: 400, seed: seed(20261124), interruptAfterTimeLimit: 15_000 })

    // Exactly one answer per frame: nothing left over, and the socket still works.
    phone.send('destroy_session', {})
    expect(['session_destroyed', 'session_not_found']).toContain(checkAnswer(await phone.next()).event)
    await new Promise(resolve => setTimeout(resolve, 50))
    expect(phone.frames).toEqual([])
    expect(frames).toBeGreaterThan(1000)
    for (const kind of ['sensor_readings_batch_written', 'invalid_sensor_readings_batch_size', 'invalid_sensor_reading_schema', 'session_destroyed',
      'session_not_found', 'error:invalid_json', 'error:invalid_frame', 'error:unknown_event', 'error:invalid_event_data',
      'error:binary_frames_not_supported', 'error:metadata_too_large']) {
      expect(seen.get(kind), kind).toBeGreaterThan(0)
    }

    // Rejected input wrote nothing: the readings, the ledger and the totals are exactly the acked batches.
    const { rows: ledger } = await app.db.query<{ session_id: number, batch_id: number }>('select session_id, batch_id from session_batches')
    expect(new Set(ledger.map(row => `${row.session_id}:${row.batch_id}`))).toEqual(acked)
    expect(await readingsCount() - before).toBe(acked.size * BATCH)
    const { rows: [totals] } = await app.db.query<{ n: number }>('select coalesce(sum(total_sensor_readings_written), 0)::int as n from sessions')
    expect(totals?.n).toBe(acked.size * BATCH)
  })

  it('close the socket with 1009 on an oversized frame and 1007 on text that is not UTF-8, and nothing else breaks', async () => {
    const killer = fc.oneof(
      fc.integer({ min: MAX_PAYLOAD + 1, max: 3 * MAX_PAYLOAD }).map(size => ({ bytes: Buffer.alloc(size, '['), code: 1009 })),
      fc.uint8Array({ minLength: 1, maxLength: 50 }).map(bytes => ({ bytes: Buffer.concat([Buffer.from('{"event":"'), Buffer.from(bytes), Buffer.from([0xc3, 0x28, 0xff])]), code: 1007 }))
    )
    await fc.assert(fc.asyncProperty(fc.array(wireFrame, { maxLength: 3 }), killer, async (prefix, { bytes, code }) => {
      const phone = await connect()
      for (const frame of prefix) send(phone, frame)
      phone.socket.send(bytes, { binary: false })
      // The socket is closed at once, so answers to the frames before may or may not have left.
      await phone.closed
      for (const answer of phone.frames) checkAnswer(answer)
      expect(phone.closeCode).toBe(code)
    }), { numRuns: 40, seed: seed(20261125) })
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200)
  })
})

// ---------------------------------------------------------------- REST

// A bare '..' or '.' never reaches a route as a parameter: clients (and inject) resolve the dot segment
// first, so /sessions/.. is a request for / (the web page's redirect). Their encoded forms do reach it.
const pathParam = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }).filter(text => text !== '.' && text !== '..'),
  fc.constantFrom('0', '-1', '1.5', '1e3', 'NaN', 'Infinity', '9007199254740993', '99999999999999999999999', ' 1', '0x1', '%00', '%2e%2e', '%2e%2e%2f'),
  fc.integer({ min: 1_000_000, max: 2 ** 31 }).map(String)
).filter(text => !protectedUserIds.has(Number(text))).map(encodeURIComponent)
/** Session ids: mostly ones that exist (the socket tests above created them), so the handlers get past "not found". */
const sessionParam = fc.oneof(pathParam, fc.integer({ min: 1, max: 40 }).map(String), fc.integer({ min: 1, max: 40 }).map(String))

const query = fc.dictionary(fc.constantFrom('take', 'skip', 'after', 'cursor', 'x', 'take[]', '__proto__'), fc.oneof(fc.string({ maxLength: 12 }), fc.integer().map(String),
  fc.constantFrom('-1', '0', '501', '1e3', 'NaN', '1.5', '', '2026-01-01T00:00:00Z', '2026-02-30T00:00:00+01:00', 'WyIyMDI2Il0', 'AAAA')), { maxKeys: 3 })
  .map(params => new URLSearchParams(params).toString())

const hex = (bytes: number) => fc.uint8Array({ minLength: bytes, maxLength: bytes }).map(b => Buffer.from(b).toString('hex'))
const someKey = fc.oneof(fc.constant(admin.user.publicKey), hex(20).map(h => `0x${h}`), hex(32), hex(32).map(h => `ed25519:${h}`),
  fc.string({ unit: 'binary', maxLength: 600 }), weird)

/** Bodies shaped like each route's, with every field sometimes hostile. */
const shaped = {
  login: fc.record({ email: fc.oneof(fc.emailAddress(), fc.constant(admin.user.email), weird), publicKey: someKey }, { requiredKeys: [] }),
  user: fc.record({
    name: fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 30 }), weird),
    email: fc.oneof(fc.emailAddress(), weird),
    publicKey: someKey,
    role: fc.oneof(fc.constantFrom('ADMIN', 'BETATESTER', 'admin', 'ROOT'), weird)
  }, { requiredKeys: [] }),
  challenge: fc.record({ publicKey: someKey }, { requiredKeys: [] }),
  verify: fc.record({ publicKey: someKey, signature: fc.oneof(hex(65).map(h => `0x${h}`), hex(64), fc.string({ maxLength: 200 }), weird) }, { requiredKeys: [] }),
  patch: fc.oneof(
    // shapes that pass the structural checks, so the hostile values reach the handler and the database
    fc.record({ metadata: fc.dictionary(fc.oneof(fc.string({ minLength: 1, maxLength: 10 }), nastyText), fc.oneof(weird, fc.jsonValue({ maxDepth: 3 })), { minKeys: 1, maxKeys: 4 }) }),
    fc.record({ flaggedIncorrect: fc.constant(true), flagReason: fc.oneof(nastyText, fc.string({ unit: 'binary', minLength: 1, maxLength: 50 })) }),
    fc.record({
      metadata: fc.oneof(fc.jsonValue({ maxDepth: 4 }), weird),
      flaggedIncorrect: fc.oneof(fc.boolean(), weird),
      flagReason: fc.oneof(fc.string({ unit: 'binary', maxLength: 50 }), weird)
    }, { requiredKeys: [] })
  )
}

/** Raw JSON bodies nested deeper than JSON.stringify (and jsonb) can follow. */
const deepMetadata = fc.integer({ min: 1000, max: 20_000 }).map(depth => `{"metadata":{"deep":${'['.repeat(depth)}${']'.repeat(depth)}}}`)

function bodyOf (fields: fc.Arbitrary<unknown>, raw: fc.Arbitrary<string> = fc.constant('{}')) {
  return fc.oneof(
    { arbitrary: fields.map(value => ({ payload: toText(value), type: 'application/json' })), weight: 5 },
    { arbitrary: raw.map(payload => ({ payload, type: 'application/json' })), weight: 1 },
    { arbitrary: fc.jsonValue({ maxDepth: 4 }).map(value => ({ payload: JSON.stringify(value), type: 'application/json' })), weight: 1 },
    { arbitrary: fc.string({ unit: 'binary', maxLength: 200 }).map(payload => ({ payload, type: 'application/json' })), weight: 1 },
    {
      arbitrary: fc.tuple(fc.string({ maxLength: 100 }), fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data', 'application/json; charset=latin1', 'nonsense'))
        .map(([payload, type]) => ({ payload, type })),
      weight: 1
    },
    { arbitrary: fc.integer({ min: 1000, max: 50_000 }).map(depth => ({ payload: '['.repeat(depth) + ']'.repeat(depth), type: 'application/json' })), weight: 1 },
    { arbitrary: fc.constant({ payload: `{"email":"${'a'.repeat(1_100_000)}@x.io"}`, type: 'application/json' }), weight: 1 }
  )
}

interface RouteSpec {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE'
  /** The route's URL with fuzzed path parameters and query. */
  url: fc.Arbitrary<string>
  body?: fc.Arbitrary<{ payload: string, type: string }>
  /** Credentials the route needs to reach validation. */
  token?: string
}

/** Every REST route of the service; a new route is one more line (authorization-matrix.test.ts lists them too). */
const routes: Record<string, RouteSpec> = {
  'POST /auth/login': { method: 'POST', url: fc.constant('/auth/login'), body: bodyOf(shaped.login) },
  'POST /auth/challenge': { method: 'POST', url: fc.constant('/auth/challenge'), body: bodyOf(shaped.challenge) },
  'POST /auth/verify': { method: 'POST', url: fc.constant('/auth/verify'), body: bodyOf(shaped.verify) },
  'GET /me': { method: 'GET', url: query.map(q => `/me?${q}`), token: tester.token },
  'POST /users': { method: 'POST', url: fc.constant('/users'), body: bodyOf(shaped.user), token: admin.token },
  'GET /users': { method: 'GET', url: query.map(q => `/users?${q}`), token: admin.token },
  'GET /users/by-public-key/:publicKey': { method: 'GET', url: pathParam.map(p => `/users/by-public-key/${p}`), token: admin.token },
  'DELETE /users/:id': { method: 'DELETE', url: pathParam.map(p => `/users/${p}`), token: admin.token },
  'GET /users/:id/sessions': { method: 'GET', url: fc.tuple(fc.oneof(pathParam, fc.constant(String(tester.user.id))), query).map(([p, q]) => `/users/${p}/sessions?${q}`), token: admin.token },
  'GET /sessions': { method: 'GET', url: query.map(q => `/sessions?${q}`), token: tester.token },
  'GET /sessions/:id': { method: 'GET', url: sessionParam.map(p => `/sessions/${p}`), token: admin.token },
  'PATCH /sessions/:id': { method: 'PATCH', url: sessionParam.map(p => `/sessions/${p}`), body: bodyOf(shaped.patch, deepMetadata), token: admin.token },
  'POST /sessions/:id/end': { method: 'POST', url: sessionParam.map(p => `/sessions/${p}/end`), token: admin.token },
  'GET /sessions/:id/readings': { method: 'GET', url: fc.tuple(sessionParam, query).map(([p, q]) => `/sessions/${p}/readings?${q}`), token: admin.token },
  'GET /sessions/:id/readings.csv': { method: 'GET', url: fc.tuple(sessionParam, query).map(([p, q]) => `/sessions/${p}/readings.csv?${q}`), token: admin.token },
  'GET /metrics': { method: 'GET', url: query.map(q => `/metrics?${q}`) },
  'GET /docs/json': { method: 'GET', url: query.map(q => `/docs/json?${q}`) },
  'GET /health': { method: 'GET', url: query.map(q => `/health?${q}`) },
  'GET /status': { method: 'GET', url: query.map(q => `/status?${q}`) }
}

const authorization = (token: string | undefined) => fc.oneof(
  { arbitrary: fc.constant(token ? `Bearer ${token}` : undefined), weight: 6 },
  { arbitrary: fc.constant(undefined), weight: 1 },
  { arbitrary: fc.string({ maxLength: 80 }).map(text => `Bearer ${text}`), weight: 1 },
  { arbitrary: fc.string({ maxLength: 80 }), weight: 1 }
)

const DOCUMENTED = [200, 201, 400, 401, 403, 404, 409, 413, 415]

describe('hostile requests on every REST route', () => {
  it.each(Object.entries(routes))('%s answers a documented status below 500 with a JSON error body', async (_name, route) => {
    const before = await readingsCount()
    const request = fc.record({ url: route.url, body: route.body ? fc.option(route.body) : fc.constant(null), authorization: authorization(route.token) })
    await fc.assert(fc.asyncProperty(request, async ({ url, body, authorization }) => {
      const headers: Record<string, string> = {}
      if (authorization !== undefined) headers.authorization = authorization
      if (body) headers['content-type'] = body.type
      const response = await app.inject({ method: route.method, url, headers, ...(body ? { payload: body.payload } : {}) })
      if (!DOCUMENTED.includes(response.statusCode)) throw new Error(`${route.method} ${url.slice(0, 100)} answered ${response.statusCode}: ${response.body.slice(0, 300)}`)
      if (response.statusCode >= 400) expect(response.json()).toEqual({ error: expect.any(String), message: expect.any(String) })
    }), { numRuns: 250, seed: seed(20261126), interruptAfterTimeLimit: 5000 })
    expect(await readingsCount()).toBe(before)
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200)
  })
})
