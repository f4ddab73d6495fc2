import { execFile } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { CSV_HEADER } from '../../src/db/readings-export.js'
import { SENSORS } from '../../src/schemas/readings.js'
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

    const all = await cli(['sessions', 'purge', '--flagged', '--yes'])
    expect(all.stdout).toContain('Deleted 1 sessions, 20 readings and 1 batch records.')
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
