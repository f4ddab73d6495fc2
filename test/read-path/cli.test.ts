import { execFile } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { CSV_HEADER } from '../../src/db/readings/readings-export.js'
import { SENSORS, type SensorName as Sensor } from '../../src/schemas/sensors.js'
import { sessionReport, type SessionReport } from '../../src/schemas/session-report.js'
import { insertReadings, insertSession, type ReadingFixture } from '../fixtures/sessions.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'

const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl)
const admin = await createUserWithToken(app, 'ADMIN')
const owner = await createUserWithToken(app, 'BETATESTER')
const other = await createUserWithToken(app, 'BETATESTER')
const dir = await mkdtemp(path.join(tmpdir(), 'motion-ingest-cli-'))
afterAll(() => rm(dir, { recursive: true, force: true }))

const BIN = path.resolve(import.meta.dirname, '../../bin/motion-ingest.js')

interface Run { code: number, stdout: string, stderr: string }

function cli (args: string[], input?: string): Promise<Run> {
  return new Promise(resolve => {
    const child = execFile(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH, DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' },
      maxBuffer: 64 << 20
    }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }))
    child.stdin?.end(input ?? '')
  })
}

// 2,400 readings at 2 ms steps with microsecond offsets, full-precision doubles, and a few awkward values.
const sent: ReadingFixture[] = []
for (let i = 0; i < 2400; i++) {
  const micros = 1_700_000_000_000_000 + i * 2000 + (i % 997)
  const timestamp = new Date(Math.floor(micros / 1000)).toISOString().replace('Z', `${String(micros % 1000).padStart(3, '0')}Z`)
  sent.push({ timestamp, sensor: SENSORS[i % 3] as ReadingFixture['sensor'], x: Math.sin(i) * 9.81, y: Math.cos(i) / 3, z: i * 1e-7 })
}
Object.assign(sent[5] as ReadingFixture, { x: 0.1 + 0.2, y: 5e-324, z: -0 })
Object.assign(sent[6] as ReadingFixture, { x: 1.7976931348623157e308, y: -1e-300, z: 1e21 })

const recorded = await insertSession(app.db, owner.user.id, { createdAt: '2024-06-01T09:00:00Z', metadata: { activity: 'walking' } })
await insertReadings(app.db, recorded, sent)
const second = await insertSession(app.db, owner.user.id, { createdAt: '2024-06-02T09:00:00Z' })
await insertReadings(app.db, second, sent.slice(0, 10))

const httpCsv = async (id: number) => (await app.inject({ url: `/sessions/${id}/readings.csv`, headers: bearer(admin.token) })).body

describe('motion-ingest sessions export', () => {
  it('writes a session into a file, line for line what was sent', async () => {
    const file = path.join(dir, 'one.csv')
    const run = await cli(['sessions', 'export', String(recorded), '-o', file])
    expect(run.code, run.stderr).toBe(0)
    expect(run.stderr).toContain(`Wrote ${sent.length} readings of session ${recorded}`)
    const [header, ...lines] = (await readFile(file, 'utf8')).trimEnd().split('\n')
    expect(header).toBe(CSV_HEADER)
    expect(lines).toHaveLength(sent.length)
    lines.forEach((line, i) => {
      const reading = sent[i] as ReadingFixture
      const [timestamp, sensor, ...values] = line.split(',')
      expect(timestamp, `line ${i + 2}`).toBe(reading.timestamp)
      expect(sensor).toBe(reading.sensor)
      expect(values.map(Number).map((v, k) => Object.is(v, [reading.x, reading.y, reading.z][k])), line).toEqual([true, true, true])
    })
    expect(await readFile(file, 'utf8')).toBe(await httpCsv(recorded))
    expect((await readdir(dir)).filter(name => name.endsWith('.part'))).toEqual([])
  })

  it('writes to stdout without -o', async () => {
    const run = await cli(['sessions', 'export', String(second)])
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toBe(await httpCsv(second))
  })

  it('exports every session of a user into a folder', async () => {
    const out = path.join(dir, 'user', 'nested')
    const run = await cli(['sessions', 'export', '--user', String(owner.user.id), '--out', out])
    expect(run.code, run.stderr).toBe(0)
    expect((await readdir(out)).sort()).toEqual([`session-${recorded}.csv`, `session-${second}.csv`].sort())
    for (const id of [recorded, second]) {
      expect(await readFile(path.join(out, `session-${id}.csv`), 'utf8')).toBe(await httpCsv(id))
    }
  })

  it('fails clearly for unknown ids and conflicting options', async () => {
    const [missing, noUser, both] = await Promise.all([
      cli(['sessions', 'export', '999999999', '-o', path.join(dir, 'missing.csv')]),
      cli(['sessions', 'export', '--user', '999999999', '--out', dir]),
      cli(['sessions', 'export', String(recorded), '--user', String(owner.user.id)])
    ])
    expect(missing).toMatchObject({ code: 1, stdout: '' })
    expect(missing.stderr.trim()).toBe('error: Session 999999999 does not exist.')
    expect((await readdir(dir)).filter(name => name.startsWith('missing'))).toEqual([])
    expect(noUser).toMatchObject({ code: 1 })
    expect(noUser.stderr.trim()).toBe('error: User 999999999 does not exist.')
    expect(both.code).toBe(1)
    expect(both.stderr).toContain('Give a session id, or --user')
  })
})

describe('motion-ingest sessions list, show and purge', () => {
  it('lists a user\'s sessions and shows one', async () => {
    const [list, show, text, unknown] = await Promise.all([
      cli(['sessions', 'list', '--user', String(owner.user.id), '--json']),
      cli(['sessions', 'show', String(recorded), '--json']),
      cli(['sessions', 'show', String(recorded)]),
      cli(['sessions', 'show', '424242424'])
    ])
    expect(list.code, list.stderr).toBe(0)
    expect(JSON.parse(list.stdout)).toMatchObject({ total: 2, items: [{ id: second }, { id: recorded }] })
    expect(JSON.parse(show.stdout)).toMatchObject({ id: recorded, metadata: { activity: 'walking' }, totalSensorReadingsWritten: sent.length, batches: { written: 0 } })
    expect(text.stdout).toContain(`Session ${recorded} of user ${owner.user.id}`)
    expect(unknown).toMatchObject({ code: 1 })
    expect(unknown.stderr.trim()).toBe('error: Session 424242424 does not exist.')
  })

  it('purges flagged sessions after confirmation, with readings and batch records', async () => {
    const day = 86_400_000
    const oldFlag = await insertSession(app.db, other.user.id, { flagReason: 'phone in bag', flaggedAt: new Date(Date.now() - 40 * day).toISOString() })
    const newFlag = await insertSession(app.db, other.user.id, { flagReason: 'wrong activity', flaggedAt: new Date(Date.now() - 2 * day).toISOString() })
    const activeFlag = await insertSession(app.db, other.user.id, { destroyed: false, flagReason: 'still recording' })
    const kept = await insertSession(app.db, other.user.id)
    for (const id of [oldFlag, newFlag, activeFlag, kept]) {
      await insertReadings(app.db, id, sent.slice(0, 20))
      await app.db.query('insert into session_batches (session_id, batch_id, reading_count) values ($1, 0, 20)', [id])
    }
    const remaining = async () => (await app.db.query<{ session_id: number, readings: number, batches: number }>(
      `select s.id as session_id, (select count(*)::int from readings r where r.session_id = s.id) as readings,
         (select count(*)::int from session_batches b where b.session_id = s.id) as batches
       from sessions s where s.user_id = $1 order by s.id`, [other.user.id])).rows

    const declined = await cli(['sessions', 'purge', '--flagged', '--older-than', '30d'], 'n\n')
    expect(declined.code, declined.stderr).toBe(0)
    expect(declined.stdout).toContain(String(oldFlag))
    expect(declined.stdout).not.toContain('wrong activity')
    expect(declined.stdout).toContain('Nothing deleted.')
    expect(await remaining()).toHaveLength(4)

    const noAnswer = await cli(['sessions', 'purge', '--flagged'])
    expect(noAnswer.stdout).toContain('Nothing deleted.')

    const confirmed = await cli(['sessions', 'purge', '--flagged', '--older-than', '30d'], 'y\n')
    expect(confirmed.stdout).toContain('Deleted 1 sessions, 20 readings and 1 batch records.')
    expect((await remaining()).map(row => row.session_id)).toEqual([newFlag, activeFlag, kept])

    expect(await cli(['sessions', 'purge', '--flagged', '--json'])).toMatchObject({ code: 1, stdout: '' })
    const all = await cli(['sessions', 'purge', '--flagged', '--yes', '--json'])
    expect(JSON.parse(all.stdout)).toEqual({ candidates: [newFlag], sessions: 1, readings: 20, batches: 1 })
    expect(await remaining()).toEqual([
      { session_id: activeFlag, readings: 20, batches: 1 },
      { session_id: kept, readings: 20, batches: 1 }
    ])
    expect(await httpCsv(recorded)).toContain('\n')
  })

  it('refuses a purge without --flagged and a malformed duration', async () => {
    const [unguarded, badDuration] = await Promise.all([
      cli(['sessions', 'purge', '--yes']),
      cli(['sessions', 'purge', '--flagged', '--older-than', '30 days', '--yes'])
    ])
    expect(unguarded.code).toBe(1)
    expect(unguarded.stderr).toContain('--flagged')
    expect(badDuration.code).toBe(1)
    expect(badDuration.stderr).toContain('--older-than must be a number followed by s, m, h, d or w')
  })
})

interface RecordingFixture {
  createdAt: string
  sensors: readonly Sensor[]
  /** The batch ids written; batch b holds BATCH_SECONDS of readings at RATE_HZ per sensor, starting b * BATCH_SECONDS in. */
  batchIds: number[]
  integrity?: 'ok' | 'mismatch' | 'unreported'
  sent?: number
}

const START = Date.parse('2024-07-01T10:00:00Z')
const RATE_HZ = 10
const BATCH_SECONDS = 15
const PER_BATCH = RATE_HZ * BATCH_SECONDS

/**
 * Adds batches to a session as the recording path leaves them: readings, and
 * a ledger row with device span and receive time, 150 ms after the batch's
 * last reading and 1 ms later per batch (a clock drifting by -1 ms per 15 s).
 */
async function writeBatches (sessionId: number, sensors: readonly Sensor[], batchIds: number[]): Promise<void> {
  for (const batch of batchIds) {
    const first = START + batch * BATCH_SECONDS * 1000
    const readings: ReadingFixture[] = []
    for (let k = 0; k < PER_BATCH; k++) {
      const timestamp = new Date(first + k * 1000 / RATE_HZ).toISOString()
      for (const sensor of sensors) readings.push({ timestamp, sensor, x: k, y: -k, z: batch })
    }
    await insertReadings(app.db, sessionId, readings)
    const last = first + (PER_BATCH - 1) * 1000 / RATE_HZ
    await app.db.query(
      `insert into session_batches (session_id, batch_id, reading_count, received_at, first_reading_at, last_reading_at)
       values ($1, $2, $3, $4, $5, $6)`,
      [sessionId, batch, readings.length, new Date(last + 150 + batch).toISOString(), new Date(first).toISOString(), new Date(last).toISOString()])
  }
}

async function recordSession (userId: number, fixture: RecordingFixture): Promise<number> {
  const id = await insertSession(app.db, userId, { createdAt: fixture.createdAt, metadata: { sampleRateHz: RATE_HZ } })
  await writeBatches(id, fixture.sensors, fixture.batchIds)
  await app.db.query('update sessions set integrity = $2, total_sensor_readings_sent = $3 where id = $1',
    [id, fixture.integrity ?? 'ok', fixture.sent ?? null])
  return id
}

const ALL_BATCHES = [0, 1, 2, 3, 4, 5]
const reporting = await createUserWithToken(app, 'BETATESTER')
// Batches 2 and 3 never arrived, and the magnetometer recorded nothing.
const lossy = await recordSession(reporting.user.id, {
  createdAt: '2024-07-01T10:00:00Z', sensors: ['Accelerometer', 'Gyroscope'], batchIds: [0, 1, 4, 5], integrity: 'unreported'
})
const clean = await recordSession(reporting.user.id, { createdAt: '2024-07-02T10:00:00Z', sensors: SENSORS, batchIds: ALL_BATCHES })
const mismatched = await recordSession(reporting.user.id, {
  createdAt: '2024-07-03T10:00:00Z', sensors: SENSORS, batchIds: ALL_BATCHES, integrity: 'mismatch', sent: 3000
})
const notComputed = await insertSession(app.db, reporting.user.id, { createdAt: '2024-07-04T10:00:00Z' })
// Created now, or the app's reaper would end it as expired.
const active = await insertSession(app.db, reporting.user.id, { destroyed: false })

const httpReport = async (id: number) => (await app.inject({ url: `/sessions/${id}/report`, headers: bearer(admin.token) })).json<SessionReport>()

describe('motion-ingest sessions show: the completeness report', () => {
  it('shows an incomplete session\'s problems, lost batches, sensors and clock in under 100 columns', async () => {
    const run = await cli(['sessions', 'show', String(lossy)])
    expect(run.code, run.stderr).toBe(0)
    const out = run.stdout
    expect(out).toContain(`Session ${lossy} of user ${reporting.user.id}`)
    expect(out).toContain('  verdict    incomplete\n')
    expect(out).toMatch(/problems +lost_batches \(2\), missing_sensor \(Magnetometer\), gaps \(2\),\s+rate_below_intended\n/)
    expect(out).toContain('batches    4 written (ids 0-5), 2 lost: 2-3')
    expect(out).toContain('integrity  unreported: 1200 written, the phone reported no count sent')
    expect(out).toMatch(/warnings +integrity_unreported/)
    expect(out).toContain('device minus server time, 4 batches received across 75 s: median -152.5 ms')
    expect(out).toContain('drift -66.7 ppm')
    expect(out).toMatch(/readings +600 +600 +0\n/)
    expect(out).toMatch(/expected +yes +yes +yes\n/)
    expect(out).toMatch(/median interval +100 ms +100 ms +-\n/)
    expect(out).toMatch(/longest gap +30100 ms +30100 ms +-\n/)
    for (const line of out.split('\n')) expect(line.length, line).toBeLessThanOrEqual(100)
  })

  it('prints the session with its batches and the full report as JSON, the report the HTTP API serves', async () => {
    const run = await cli(['sessions', 'show', String(lossy), '--json'])
    expect(run.code, run.stderr).toBe(0)
    const shown = JSON.parse(run.stdout) as { id: number, batches: unknown, report: SessionReport }
    expect(shown).toMatchObject({ id: lossy, userId: reporting.user.id, integrity: 'unreported', batches: { written: 4, highestBatchId: 5, missing: 2 } })
    const report = sessionReport.parse(shown.report)
    expect(report.summary).toMatchObject({ complete: false, lostBatches: 2, missingSensors: ['Magnetometer'] })
    expect(report.summary.problems).toEqual(expect.arrayContaining(['lost_batches', 'missing_sensor']))
    expect(report.batches).toMatchObject({ written: 4, lost: 2, lostRanges: [[2, 3]], lostRangesTruncated: false })
    expect(report.sensors.Magnetometer).toMatchObject({ expected: true, readings: 0 })
    expect(report.sensors.Accelerometer).toMatchObject({ readings: 600, medianIntervalMs: 100, intendedHz: RATE_HZ, gaps: { count: 1, longestMs: 30100 } })
    expect(report.clock).toMatchObject({ batches: 4, offsetMs: { median: -152.5, min: -155, max: -150 }, driftPpm: -66.7 })
    expect(report.timeline.readings.Accelerometer.reduce((a, b) => a + b, 0)).toBe(600)
    expect(report).toEqual(await httpReport(lossy))
  })

  it('says an active session is still recording, with report null in JSON', async () => {
    const [text, json] = await Promise.all([cli(['sessions', 'show', String(active)]), cli(['sessions', 'show', String(active), '--json'])])
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toContain('the session is still recording; the report is computed when it ends')
    expect(JSON.parse(json.stdout)).toMatchObject({ id: active, destroyedAt: null, report: null })
  })

  it('keeps the stored report until --recompute computes and stores it again', async () => {
    const later = await createUserWithToken(app, 'BETATESTER')
    const id = await recordSession(later.user.id, { createdAt: '2024-07-06T10:00:00Z', sensors: SENSORS, batchIds: [0, 1, 3] })
    const show = async (...args: string[]) => {
      const run = await cli(['sessions', 'show', String(id), '--json', ...args])
      expect(run.code, run.stderr).toBe(0)
      return (JSON.parse(run.stdout) as { report: SessionReport }).report
    }
    const first = await show()
    expect(first.batches.lostRanges).toEqual([[2, 2]])
    // The batch turns up late (say, restored from the phone): the stored report does not see it ...
    await writeBatches(id, SENSORS, [2])
    expect(await show()).toEqual(first)
    // ... until it is recomputed, and the recomputed one is what is stored.
    const recomputed = await show('--recompute')
    expect(recomputed.summary).toMatchObject({ complete: true, lostBatches: 0 })
    expect(recomputed.computedAt > first.computedAt).toBe(true)
    expect(await show()).toEqual(recomputed)
  })
})

describe('motion-ingest sessions list: report filters', () => {
  const ids = async (...args: string[]) => {
    const run = await cli(['sessions', 'list', '--json', ...args])
    expect(run.code, run.stderr).toBe(0)
    return (JSON.parse(run.stdout) as { items: Array<{ id: number }> }).items.map(item => item.id)
  }

  it('selects sessions by report verdict and integrity, and shows the verdict in the table', async () => {
    for (const id of [lossy, clean, mismatched]) await app.reports.report(id)
    const user = ['--user', String(reporting.user.id)]
    expect(await ids(...user)).toEqual([active, notComputed, mismatched, clean, lossy])
    expect(await ids(...user, '--incomplete')).toEqual([mismatched, lossy])
    expect(await ids(...user, '--complete')).toEqual([clean])
    expect(await ids(...user, '--integrity', 'unreported')).toEqual([lossy])
    expect(await ids(...user, '--integrity', 'ok', '--complete')).toEqual([clean])
    // Without --user: every user's sessions, and this is the only mismatch in the database.
    expect(await ids('--integrity', 'mismatch')).toEqual([mismatched])

    const table = await cli(['sessions', 'list', ...user])
    expect(table.code, table.stderr).toBe(0)
    // A plain table: a header, a rule, then one line per session starting with its id; no quotes.
    const lines = table.stdout.split('\n')
    expect(lines[0]).toMatch(/^ *id +user +createdAt +ended +readings +integrity +report +flagged$/)
    const rowOf = (id: number) => lines.find(line => new RegExp(`^ *${id}  `).test(line)) ?? ''
    expect(rowOf(clean)).toMatch(/ complete\b/)
    expect(rowOf(mismatched)).toContain(' integrity_mismatch')
    expect(rowOf(lossy)).toContain('lost_batches,missing_sensor')
    expect(rowOf(notComputed)).toContain('not computed')
    expect(table.stdout).not.toContain("'")
    expect(table.stdout).toContain('5 of 5 sessions')
  })

  it('rejects a bad --integrity and --incomplete with --complete', async () => {
    const [badIntegrity, both] = await Promise.all([
      cli(['sessions', 'list', '--integrity', 'maybe']),
      cli(['sessions', 'list', '--incomplete', '--complete'])
    ])
    expect(badIntegrity).toMatchObject({ code: 1, stdout: '' })
    expect(badIntegrity.stderr.trim()).toBe('error: --integrity must be one of ok, mismatch, unreported, got "maybe".')
    expect(both).toMatchObject({ code: 1, stdout: '' })
    expect(both.stderr.trim()).toBe('error: Give --incomplete or --complete, not both.')
  })
})
