import { describe, expect, it } from 'vitest'
import { formatMicros, parseIsoTimestampMicros } from '../../src/schemas/timestamps.js'
import { SessionLabels } from '../../src/labels/session-labels.js'
import { MAX_LABELS_PER_SESSION, MAX_VOCABULARY_SIZE } from '../../src/schemas/labels.js'
import { insertReadings, insertSession, type ReadingFixture } from '../fixtures/sessions.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'

const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl)
const admin = await createUserWithToken(app, 'ADMIN')
const owner = await createUserWithToken(app, 'BETATESTER')
const other = await createUserWithToken(app, 'BETATESTER')

// Readings every 10 ms from FIRST, odd microseconds included, 1000 of them.
const FIRST = '2024-06-01T09:00:00.000001Z'
const FIRST_US = parseIsoTimestampMicros(FIRST) as number
const LAST_US = FIRST_US + 999 * 10_000
const at = (offsetUs: number) => formatMicros(FIRST_US + offsetUs)
const readings: ReadingFixture[] = Array.from({ length: 1000 }, (_, i) => ({ timestamp: at(i * 10_000), sensor: 'Accelerometer', x: i, y: 0, z: 9.8 }))

/** An ended session of the owner with the readings above. */
async function endedSession (metadata: Record<string, unknown> = {}, userId = owner.user.id): Promise<number> {
  const id = await insertSession(app.db, userId, { createdAt: '2024-06-01T08:59:59Z', metadata })
  await insertReadings(app.db, id, readings)
  return id
}

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE'
const call = (method: Method, url: string, token: string | undefined, payload?: unknown) =>
  app.inject({ method, url, headers: token ? bearer(token) : {}, ...(payload === undefined ? {} : { payload: payload as object }) })

const add = (sessionId: number, body: Record<string, unknown>, token = owner.token) => call('POST', `/sessions/${sessionId}/labels`, token, body)

describe('session labels over HTTP', () => {
  it('stores a label to the microsecond for the owner and lists it with the session\'s facts', async () => {
    const id = await endedSession()
    const response = await add(id, { startTime: at(1), endTime: at(5_000_001), label: 'Walking', note: 'along the river' })
    expect(response.statusCode, response.body).toBe(201)
    const label = response.json()
    expect(label).toMatchObject({ sessionId: id, startTime: at(1), endTime: at(5_000_001), label: 'walking', note: 'along the river' })
    expect(label).toMatchObject({ createdBy: owner.user.id, duplicate: false, closedLabelId: null })
    const list = await call('GET', `/sessions/${id}/labels`, owner.token)
    expect(list.statusCode).toBe(200)
    expect(list.json()).toEqual({
      sessionId: id,
      active: false,
      readings: { first: FIRST, last: formatMicros(LAST_US) },
      labelRange: { from: FIRST, to: formatMicros(LAST_US + 1) },
      defaultLabel: null,
      unmatchedActivity: null,
      labels: [{ id: label.id, sessionId: id, startTime: at(1), endTime: at(5_000_001), label: 'walking', note: 'along the river', createdBy: owner.user.id, createdAt: expect.any(String) }]
    })
    // Stored exactly: the database holds the same microseconds.
    const { rows: [row] } = await app.db.query<{ start: string }>(
      'select to_char(start_at at time zone \'UTC\', \'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\') as start from session_labels where id = $1', [label.id])
    expect(row?.start).toBe(at(1))
  })

  it('answers another beta tester 404 on every label route, and lets an admin read and label', async () => {
    const id = await endedSession()
    const mine = (await add(id, { startTime: at(0), endTime: at(1_000_000), label: 'still' })).json()
    for (const [method, url, body] of [
      ['GET', `/sessions/${id}/labels`, undefined],
      ['POST', `/sessions/${id}/labels`, { startTime: at(2_000_000), endTime: at(3_000_000), label: 'still' }],
      ['PATCH', `/sessions/${id}/labels/${mine.id}`, { note: 'mine now' }],
      ['DELETE', `/sessions/${id}/labels/${mine.id}`, undefined]
    ] as Array<[Method, string, unknown]>) {
      const refused = await call(method, url, other.token, body)
      expect(refused.statusCode, `${method} ${url}`).toBe(404)
      expect(refused.json()).toEqual({ error: 'NOT_FOUND', message: `Session ${id} does not exist` })
      expect((await call(method, url, undefined, body)).statusCode).toBe(401)
    }
    const byAdmin = await add(id, { startTime: at(2_000_000), endTime: at(3_000_000), label: 'running' }, admin.token)
    expect(byAdmin.statusCode).toBe(201)
    expect(byAdmin.json().createdBy).toBe(admin.user.id)
    expect((await call('GET', `/sessions/${id}/labels`, admin.token)).json().labels.map((l: { label: string }) => l.label)).toEqual(['still', 'running'])
    expect((await call('PATCH', `/sessions/${id}/labels/${mine.id}`, admin.token, { note: 'checked' })).json().note).toBe('checked')
  })

  it('refuses each mistake with a stable code and stores nothing', async () => {
    const id = await endedSession()
    await add(id, { startTime: at(1_000_000), endTime: at(2_000_000), label: 'cycling' })
    const cases: Array<[Record<string, unknown>, number, string]> = [
      [{ startTime: at(3_000_000), endTime: at(4_000_000), label: 'skiing' }, 400, 'UNKNOWN_LABEL'],
      [{ startTime: at(-1), endTime: at(1_000_000), label: 'walking' }, 400, 'LABEL_OUTSIDE_SESSION'],
      [{ startTime: at(9_000_000), endTime: formatMicros(LAST_US + 2), label: 'walking' }, 400, 'LABEL_OUTSIDE_SESSION'],
      [{ startTime: at(1_500_000), endTime: at(2_500_000), label: 'walking' }, 409, 'LABEL_OVERLAP'],
      [{ startTime: at(500_000), endTime: at(1_000_001), label: 'cycling' }, 409, 'LABEL_OVERLAP'],
      [{ startTime: at(3_000_000), endTime: at(3_000_000), label: 'walking' }, 400, 'VALIDATION_FAILED'],
      [{ startTime: at(3_000_000), label: 'walking' }, 400, 'VALIDATION_FAILED'],
      [{ startTime: 'yesterday', endTime: at(3_000_000), label: 'walking' }, 400, 'VALIDATION_FAILED'],
      [{ startTime: at(3_000_000), endTime: at(4_000_000), label: 'walking', colour: 'red' }, 400, 'VALIDATION_FAILED']
    ]
    for (const [body, status, code] of cases) {
      const response = await add(id, body)
      expect(response.statusCode, JSON.stringify(body)).toBe(status)
      expect(response.json().error, JSON.stringify(body)).toBe(code)
    }
    expect((await add(id, { startTime: at(1_500_000), endTime: at(2_500_000), label: 'walking' })).json().message).toMatch(/overlaps label \d+ \(cycling/)
    // The last reading can be covered: the range ends a microsecond after it.
    expect((await add(id, { startTime: at(9_000_000), endTime: formatMicros(LAST_US + 1), label: 'walking' })).statusCode).toBe(201)
    expect((await call('GET', `/sessions/${id}/labels`, owner.token)).json().labels).toHaveLength(2)
  })

  it('acknowledges a resend as a duplicate, and takes touching intervals and epoch milliseconds', async () => {
    const id = await endedSession()
    const body = { startTime: at(1_000_000), endTime: at(2_000_000), label: 'cycling', note: 'hill' }
    const first = await add(id, body)
    const again = await add(id, { ...body, label: 'CYCLING' })
    expect(again.statusCode).toBe(200)
    expect(again.json()).toMatchObject({ id: first.json().id, duplicate: true })
    const touching = await add(id, { startTime: (FIRST_US + 2_000_000) / 1000, endTime: (FIRST_US + 3_000_000) / 1000, label: 'walking' })
    expect(touching.statusCode, touching.body).toBe(201)
    expect(touching.json()).toMatchObject({ startTime: at(2_000_000), endTime: at(3_000_000) })
  })

  it('changes and deletes a label under the same rules', async () => {
    const id = await endedSession()
    const a = (await add(id, { startTime: at(0), endTime: at(1_000_000), label: 'walking', note: 'start' })).json()
    const b = (await add(id, { startTime: at(1_000_000), endTime: at(2_000_000), label: 'cycling' })).json()
    const patch = (labelId: number, body: unknown) => call('PATCH', `/sessions/${id}/labels/${labelId}`, owner.token, body)
    const changed = await patch(a.id, { label: 'Running', note: null })
    expect(changed.statusCode).toBe(200)
    expect(changed.json()).toMatchObject({ id: a.id, label: 'running', note: null, startTime: at(0), endTime: at(1_000_000) })
    expect((await patch(a.id, { endTime: at(1_000_001) })).json().error).toBe('LABEL_OVERLAP')
    expect((await patch(a.id, { startTime: at(-1) })).json().error).toBe('LABEL_OUTSIDE_SESSION')
    expect((await patch(a.id, { label: 'skiing' })).json().error).toBe('UNKNOWN_LABEL')
    expect((await patch(a.id, { startTime: at(1_000_000) })).json().error).toBe('INVALID_LABEL_INTERVAL')
    expect((await patch(a.id, {})).json().error).toBe('VALIDATION_FAILED')
    expect((await patch(b.id, { startTime: at(500_000) })).statusCode).toBe(409)
    expect((await patch(b.id, { startTime: at(1_500_000), endTime: at(2_500_000) })).json()).toMatchObject({ startTime: at(1_500_000), endTime: at(2_500_000) })
    const elsewhere = await endedSession()
    expect((await call('PATCH', `/sessions/${elsewhere}/labels/${a.id}`, owner.token, { note: 'x' })).statusCode).toBe(404)
    expect((await call('DELETE', `/sessions/${elsewhere}/labels/${a.id}`, owner.token)).statusCode).toBe(404)
    const deleted = await call('DELETE', `/sessions/${id}/labels/${a.id}`, owner.token)
    expect(deleted.json()).toEqual({ id: a.id, deleted: true })
    expect((await call('DELETE', `/sessions/${id}/labels/${a.id}`, owner.token)).statusCode).toBe(404)
    expect((await call('PATCH', `/sessions/${id}/labels/${a.id}`, owner.token, { note: 'x' })).json()).toEqual({ error: 'NOT_FOUND', message: `Session ${id} has no label ${a.id}` })
  })

  it('lists the labels of a time range', async () => {
    const id = await endedSession()
    for (const [from, to, label] of [[0, 1, 'walking'], [1, 2, 'cycling'], [3, 4, 'still']] as const) {
      await add(id, { startTime: at(from * 1_000_000), endTime: at(to * 1_000_000), label })
    }
    const inRange = await call('GET', `/sessions/${id}/labels?from=${encodeURIComponent(at(1_000_000))}&to=${encodeURIComponent(at(3_000_001))}`, owner.token)
    expect(inRange.json().labels.map((l: { label: string }) => l.label)).toEqual(['cycling', 'still'])
    expect((await call('GET', `/sessions/${id}/labels?from=soon`, owner.token)).statusCode).toBe(400)
  })

  it('takes metadata.activity as the default label in any case, and reports one outside the vocabulary', async () => {
    const matched = await endedSession({ activity: ' In_Vehicle' })
    expect((await call('GET', `/sessions/${matched}/labels`, owner.token)).json()).toMatchObject({ defaultLabel: 'in_vehicle', unmatchedActivity: null })
    const unmatched = await endedSession({ activity: 'Mountain biking' })
    expect((await call('GET', `/sessions/${unmatched}/labels`, owner.token)).json()).toMatchObject({ defaultLabel: null, unmatchedActivity: 'Mountain biking' })
  })

  it('gives exports the label of every instant of a session: interval labels, the default elsewhere, an open label to the end', async () => {
    const id = await endedSession({ activity: 'Still' })
    const labels = new SessionLabels(app.db)
    const walking = await labels.add(id, null, { startUs: FIRST_US + 1_000_000, endUs: FIRST_US + 2_000_000, label: 'walking', note: null })
    const open = await labels.add(id, null, { startUs: FIRST_US + 5_000_000, endUs: null, label: 'cycling', note: null })
    expect(open).toMatchObject({ status: 'recorded', closedLabelId: null })
    const segments = await labels.segments(id)
    expect(segments?.map(s => [s.startUs - FIRST_US, s.endUs - FIRST_US, s.label])).toEqual([
      [0, 1_000_000, 'still'], [1_000_000, 2_000_000, 'walking'], [2_000_000, 5_000_000, 'still'], [5_000_000, LAST_US + 1 - FIRST_US, 'cycling']
    ])
    expect(segments?.[1]?.labelId).toBe(walking.status === 'recorded' ? walking.label.id : -1)
    const window = await labels.segments(id, { fromUs: FIRST_US + 1_500_000, toUs: FIRST_US + 2_500_000 })
    expect(window?.map(s => [s.startUs - FIRST_US, s.endUs - FIRST_US, s.label])).toEqual([[1_500_000, 2_000_000, 'walking'], [2_000_000, 2_500_000, 'still']])
    expect(await labels.segments(999_999_999)).toBeUndefined()
  })

  it('takes labels on an active session from a minute before its creation; an ended one without readings takes none', async () => {
    const tester = await createUserWithToken(app, 'BETATESTER')
    const active = await insertSession(app.db, tester.user.id, { destroyed: false })
    const createdUs = parseIsoTimestampMicros((await call('GET', `/sessions/${active}`, tester.token)).json().createdAt) as number
    const label = (startS: number, endS: number) => add(active, { startTime: formatMicros(createdUs + startS * 1e6), endTime: formatMicros(createdUs + endS * 1e6), label: 'walking' }, tester.token)
    expect((await label(-30, 5)).statusCode).toBe(201)
    expect((await label(-90, -80)).json().error).toBe('LABEL_OUTSIDE_SESSION')
    expect((await label(3600, 3601)).json().error).toBe('LABEL_OUTSIDE_SESSION')
    expect((await call('GET', `/sessions/${active}/labels`, tester.token)).json()).toMatchObject({ active: true, readings: null, labelRange: { from: formatMicros(createdUs - 60e6) } })
    const empty = await insertSession(app.db, owner.user.id, {})
    expect((await add(empty, { startTime: at(0), endTime: at(1), label: 'walking' })).json())
      .toEqual({ error: 'LABEL_OUTSIDE_SESSION', message: `Session ${empty} ended without readings: there is nothing to label` })
    expect((await call('GET', `/sessions/${empty}/labels`, owner.token)).json()).toMatchObject({ readings: null, labelRange: null })
  })

  it('lets exactly one of concurrent overlapping labels in', async () => {
    const id = await endedSession()
    const names = ['walking', 'cycling', 'still', 'running', 'in_vehicle', 'walking', 'cycling', 'still']
    const responses = await Promise.all(names.map((label, i) => add(id, { startTime: at(i * 1000), endTime: at(5_000_000 + i), label })))
    expect(responses.map(r => r.statusCode).sort()).toEqual([201, 409, 409, 409, 409, 409, 409, 409])
    expect((await call('GET', `/sessions/${id}/labels`, owner.token)).json().labels).toHaveLength(1)
  })

  it(`holds at most ${MAX_LABELS_PER_SESSION} labels per session`, async () => {
    const id = await endedSession()
    await app.db.query(
      `insert into session_labels (session_id, start_at, end_at, label)
       select $1, $2::timestamptz + i * interval '100 microseconds', $2::timestamptz + (i + 1) * interval '100 microseconds', 'still'
       from generate_series(0, $3::int - 1) as i`, [id, FIRST, MAX_LABELS_PER_SESSION])
    const response = await add(id, { startTime: at(5_000_000), endTime: at(6_000_000), label: 'walking' })
    expect(response.statusCode).toBe(409)
    expect(response.json().error).toBe('LABEL_LIMIT')
    // A resend of a stored label is still acknowledged.
    expect((await add(id, { startTime: at(0), endTime: at(100), label: 'still' })).json()).toMatchObject({ duplicate: true })
  })

  it('goes with its session', async () => {
    const tester = await createUserWithToken(app, 'BETATESTER')
    const id = await endedSession({}, tester.user.id)
    await add(id, { startTime: at(0), endTime: at(1000), label: 'walking' }, tester.token)
    expect((await call('DELETE', `/users/${tester.user.id}`, admin.token)).statusCode).toBe(200)
    const { rows: [row] } = await app.db.query<{ n: number }>('select count(*)::int as n from session_labels where session_id = $1', [id])
    expect(row?.n).toBe(0)
  })
})

describe('the label vocabulary', () => {
  it('is read by everyone and changed by admins only', async () => {
    const list = await call('GET', '/labels/vocabulary', owner.token)
    expect(list.statusCode).toBe(200)
    expect(list.json().items.map((entry: { name: string }) => entry.name)).toEqual(expect.arrayContaining(['cycling', 'in_vehicle', 'running', 'still', 'walking']))
    expect((await call('GET', '/labels/vocabulary', undefined)).statusCode).toBe(401)
    expect((await call('POST', '/labels/vocabulary', owner.token, { name: 'skiing' })).statusCode).toBe(403)
    expect((await call('DELETE', '/labels/vocabulary/still', owner.token)).statusCode).toBe(403)
    const added = await call('POST', '/labels/vocabulary', admin.token, { name: 'Skiing', description: 'downhill' })
    expect(added.statusCode).toBe(201)
    expect(added.json()).toMatchObject({ name: 'skiing', description: 'downhill' })
    expect((await call('POST', '/labels/vocabulary', admin.token, { name: 'skiing' })).json().error).toBe('VOCABULARY_EXISTS')
    expect((await call('POST', '/labels/vocabulary', admin.token, { name: 'ski ing' })).json().error).toBe('VALIDATION_FAILED')
    expect((await call('POST', '/labels/vocabulary', admin.token, { name: '9lives' })).json().error).toBe('VALIDATION_FAILED')
    const id = await endedSession({ activity: 'SKIING' })
    expect((await call('GET', `/sessions/${id}/labels`, owner.token)).json().defaultLabel).toBe('skiing')
    await add(id, { startTime: at(0), endTime: at(1000), label: 'skiing' })
    const inUse = await call('DELETE', '/labels/vocabulary/skiing', admin.token)
    expect(inUse.statusCode).toBe(409)
    expect(inUse.json().error).toBe('VOCABULARY_IN_USE')
    await app.db.query('delete from session_labels where session_id = $1', [id])
    expect((await call('DELETE', '/labels/vocabulary/Skiing', admin.token)).json()).toEqual({ name: 'skiing', deleted: true })
    expect((await call('DELETE', '/labels/vocabulary/skiing', admin.token)).statusCode).toBe(404)
    // Without its name in the vocabulary the activity is reported, not guessed.
    expect((await call('GET', `/sessions/${id}/labels`, owner.token)).json()).toMatchObject({ defaultLabel: null, unmatchedActivity: 'SKIING' })
  })

  it(`holds at most ${MAX_VOCABULARY_SIZE} names`, async () => {
    const { rows: [count] } = await app.db.query<{ n: number }>('select count(*)::int as n from label_vocabulary')
    const fill = MAX_VOCABULARY_SIZE - (count?.n ?? 0)
    await app.db.query('insert into label_vocabulary (name) select \'filler_\' || i from generate_series(1, $1::int) as i', [fill])
    try {
      const response = await call('POST', '/labels/vocabulary', admin.token, { name: 'one_more' })
      expect(response.statusCode).toBe(409)
      expect(response.json().error).toBe('VOCABULARY_FULL')
    } finally {
      await app.db.query('delete from label_vocabulary where name like \'filler\\_%\'')
    }
  })
})
