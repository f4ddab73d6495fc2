import { execFile } from 'node:child_process'
import path from 'node:path'
import { Writable } from 'node:stream'
import { beforeAll, describe, expect, it } from 'vitest'
import type { VerifyResult } from '../../src/cli/verify.js'
import { currentValue } from '../../src/metrics.js'
import type { IntegrityCheck } from '../../src/reports/integrity-checks.js'
import { SENSORS } from '../../src/schemas/sensors.js'
import { insertReadings, insertSession, type ReadingFixture } from '../fixtures/sessions.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { makeReadings, TestPhone, wsUrl } from '../ws-client.js'

const BATCH = 6
const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl, { SENSOR_READINGS_BATCH_SIZE: String(BATCH), INTEGRITY_AUDIT_INTERVAL_MS: '0' })
await app.listen({ port: 0, host: '127.0.0.1' })

const BIN = path.resolve(import.meta.dirname, '../../bin/motion-ingest.js')
// For tests that start the CLI many times: each start compiles the sources with tsx, slow on a busy machine.
const SPAWNS_TIMEOUT = 180_000

interface Run { code: number, stdout: string, stderr: string }

function cli (args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise(resolve => {
    execFile(process.execPath, [BIN, 'verify', ...args], {
      env: { PATH: process.env.PATH, DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn', ...env },
      maxBuffer: 16 << 20
    }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }))
  })
}

const json = async (...args: string[]) => {
  const run = await cli([...args, '--json'])
  return { code: run.code, result: JSON.parse(run.stdout) as VerifyResult }
}

/** The checks each session failed, from verify's text output. */
function failedChecks (stdout: string): Map<number, IntegrityCheck[]> {
  const found = new Map<number, IntegrityCheck[]>()
  for (const line of stdout.split('\n')) {
    const match = /^session (\d+) ([a-z_]+): /.exec(line)
    if (!match) continue
    const id = Number(match[1])
    found.set(id, [...found.get(id) ?? [], match[2] as IntegrityCheck])
  }
  return found
}

/** A session recorded by a real phone over the WebSocket, ended by the phone with its count sent. */
async function recordByPhone (token: string, batches: number): Promise<number> {
  const phone = await TestPhone.connect(wsUrl(app), bearer(token))
  try {
    phone.send('create_session', {})
    const { sessionId } = await phone.expect('session_created') as { sessionId: number }
    for (let batch = 0; batch < batches; batch++) {
      phone.send('write_sensor_readings_batch', { batch_id: batch, sensor_readings: makeReadings(BATCH, Date.now() - 60_000 + batch * 100, batch) })
      await phone.expect('sensor_readings_batch_written')
    }
    phone.send('destroy_session', { totalSensorReadingsSent: batches * BATCH })
    expect(await phone.expect('session_destroyed')).toMatchObject({ integrity: 'ok', report: { lostBatches: 0 } })
    return sessionId
  } finally {
    await phone.close()
  }
}

/**
 * A session written straight into the tables as the recording path leaves
 * it: readings and a ledger row per batch, the phone's count sent, and (when
 * ended) its stored report.
 */
async function recordFixture (userId: number, createdAt: string, { batches = 3, ended = true } = {}): Promise<number> {
  const id = await insertSession(app.db, userId, { createdAt, destroyed: ended })
  const start = Date.parse(createdAt)
  for (let batch = 0; batch < batches; batch++) {
    const first = start + batch * 1000
    const readings: ReadingFixture[] = Array.from({ length: BATCH }, (_, k) => ({
      timestamp: new Date(first + Math.floor(k / 3) * 100).toISOString(), sensor: SENSORS[k % 3] as ReadingFixture['sensor'], x: k, y: batch, z: 0
    }))
    await insertReadings(app.db, id, readings)
    await app.db.query(
      `insert into session_batches (session_id, batch_id, reading_count, received_at, first_reading_at, last_reading_at)
       values ($1, $2, $3, $4, $5, $6)`,
      [id, batch, BATCH, new Date(first + 500).toISOString(), new Date(first).toISOString(), new Date(first + 100).toISOString()])
  }
  if (ended) {
    await app.db.query('update sessions set total_sensor_readings_sent = total_sensor_readings_written where id = $1', [id])
    expect(await app.reports.report(id)).toMatchObject({ status: 'ready' })
  }
  return id
}

const alice = await createUserWithToken(app, 'BETATESTER')
const bob = await createUserWithToken(app, 'BETATESTER')
const carol = await createUserWithToken(app, 'BETATESTER')

describe('motion-ingest verify on a clean database', () => {
  it('exits 0 with every session checked, phone recordings and an active session included', async () => {
    await recordByPhone(alice.token, 3)
    await recordByPhone(alice.token, 2)
    await recordFixture(bob.user.id, '2023-01-10T10:00:00Z')
    await recordFixture(bob.user.id, '2023-01-11T10:00:00Z', { batches: 0 })
    // Active, so neither ended nor reported; created now, or the reaper would end it.
    await recordFixture(bob.user.id, new Date().toISOString(), { ended: false })

    const text = await cli([])
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toMatch(/^Checked 5 sessions in \d+\.\d s: no mismatches\.\n$/)
    expect(text.stderr).toBe('')

    const { code, result } = await json()
    expect(code).toBe(0)
    expect(result).toMatchObject({ clean: true, sessionsChecked: 5, mismatchedSessions: [], mismatches: [] })
    expect(result.elapsedMs).toBeGreaterThanOrEqual(0)

    // Two sessions a query: the id cursor goes through every one of them.
    const chunked = await json('--chunk-size', '2')
    expect(chunked).toMatchObject({ code: 0, result: { clean: true, sessionsChecked: 5 } })
  })
})

/** Seven sessions of carol's, six of them corrupted on purpose, and the checks each must fail. */
async function corruptSessions () {
  // Created in March 2023 (dropped reading, bumped total) and in April (the rest).
  const droppedReading = await recordFixture(carol.user.id, '2023-03-01T10:00:00Z')
  const bumpedTotal = await recordFixture(carol.user.id, '2023-03-02T10:00:00Z')
  const ledgerWithoutReadings = await recordFixture(carol.user.id, '2023-04-01T10:00:00Z')
  const editedReport = await recordFixture(carol.user.id, '2023-04-02T10:00:00Z')
  const invertedSpan = await recordFixture(carol.user.id, '2023-04-03T10:00:00Z')
  const malformedLedger = await recordFixture(carol.user.id, '2023-04-04T10:00:00Z')
  const untouched = await recordFixture(carol.user.id, '2023-04-05T10:00:00Z')

  // One row by its key: a ctid names a row only within one table, and a hypertable's chunks each have their own.
  await app.db.query(`delete from readings r using (select ts, sensor from readings where session_id = $1 order by ts, sensor limit 1) one
    where r.session_id = $1 and r.ts = one.ts and r.sensor = one.sensor`, [droppedReading])
  await app.db.query('update sessions set total_sensor_readings_written = total_sensor_readings_written + 1 where id = $1', [bumpedTotal])
  await app.db.query('insert into session_batches (session_id, batch_id, reading_count) values ($1, 3, 5)', [ledgerWithoutReadings])
  await app.db.query('update session_reports set report = jsonb_set(report, \'{sensors,Gyroscope,readings}\', \'1\') where session_id = $1', [editedReport])
  await app.db.query('update session_batches set first_reading_at = last_reading_at + interval \'1 second\' where session_id = $1 and batch_id = 1', [invertedSpan])
  // What the table's checks forbid, as a restore without constraints could leave it.
  await app.db.query('alter table session_batches drop constraint session_batches_batch_id_check, drop constraint session_batches_reading_count_check')
  await app.db.query('insert into session_batches (session_id, batch_id, reading_count) values ($1, -2, 0)', [malformedLedger])

  const expected = new Map<number, IntegrityCheck[]>([
    [droppedReading, ['readings_total', 'report_readings']],
    [bumpedTotal, ['readings_total', 'report_readings', 'integrity_ok_sent']],
    [ledgerWithoutReadings, ['readings_total', 'report_batches']],
    [editedReport, ['report_readings']],
    [invertedSpan, ['ledger_spans']],
    [malformedLedger, ['ledger_batch_ids', 'ledger_reading_counts', 'report_batches']]
  ])
  return { droppedReading, bumpedTotal, ledgerWithoutReadings, editedReport, invertedSpan, malformedLedger, untouched, expected, total: [...expected.values()].flat().length }
}

describe('motion-ingest verify on corrupted sessions', () => {
  let corrupted: Awaited<ReturnType<typeof corruptSessions>>
  beforeAll(async () => { corrupted = await corruptSessions() })

  it('prints one line per mismatch, exactly for the corrupted sessions, and exits 1', async () => {
    const { droppedReading, bumpedTotal, ledgerWithoutReadings, editedReport, invertedSpan, malformedLedger, untouched, expected, total } = corrupted
    const run = await cli([])
    expect(run.code, run.stderr).toBe(1)
    expect(failedChecks(run.stdout)).toEqual(expected)
    expect(run.stdout).toContain(`session ${droppedReading} readings_total: session written total 18, ledger sum 18, readings rows 17\n`)
    expect(run.stdout).toContain(`session ${bumpedTotal} integrity_ok_sent: integrity ok, but the phone reported 18 sent and 19 were written\n`)
    expect(run.stdout).toContain(`session ${editedReport} report_readings: report sensors' readings 13, readings rows 18\n`)
    expect(run.stdout).toContain(`session ${ledgerWithoutReadings} report_batches: report batches.written 3, ledger rows 4; report batches.highestBatchId 2, ledger highest 3\n`)
    expect(run.stdout).toContain(`session ${malformedLedger} ledger_batch_ids: 1 ledger row with a batch id below 0 (lowest -2)\n`)
    expect(run.stdout).toContain(`session ${invertedSpan} ledger_spans: 1 ledger row with first_reading_at after last_reading_at (first: batch 1)\n`)
    expect(run.stdout).not.toContain(`session ${untouched} `)
    expect(run.stdout.trimEnd().split('\n').at(-1)).toMatch(new RegExp(`^Checked 12 sessions in \\d+\\.\\d s: ${total} mismatches in 6 sessions\\.$`))
  })

  it('gives the same findings as JSON, with the figures compared', async () => {
    const { droppedReading, bumpedTotal, expected, total } = corrupted
    const { code, result } = await json('--chunk-size', '3')
    expect(code).toBe(1)
    expect(result).toMatchObject({ clean: false, sessionsChecked: 12, mismatchedSessions: [...expected.keys()] })
    expect(result.mismatches).toHaveLength(total)
    expect(result.mismatches.find(m => m.sessionId === droppedReading)).toEqual({
      sessionId: droppedReading,
      check: 'readings_total',
      detail: 'session written total 18, ledger sum 18, readings rows 17',
      values: { written: 18, ledger: 18, rows: 17 }
    })
    expect(result.mismatches.find(m => m.sessionId === bumpedTotal && m.check === 'integrity_ok_sent')?.values).toEqual({ sent: 18, written: 19 })
  })

  it('checks one session, one user\'s or a time range of them', async () => {
    const { droppedReading, bumpedTotal, ledgerWithoutReadings, editedReport, untouched, expected } = corrupted
    const one = await json('--session', String(editedReport))
    expect(one).toMatchObject({ code: 1, result: { sessionsChecked: 1, mismatchedSessions: [editedReport] } })
    expect(one.result.mismatches.map(m => m.check)).toEqual(['report_readings'])
    expect(await json('--session', String(untouched))).toMatchObject({ code: 0, result: { clean: true, sessionsChecked: 1 } })

    expect(await json('--user', String(bob.user.id))).toMatchObject({ code: 0, result: { clean: true, sessionsChecked: 3 } })
    expect(await json('--user', String(carol.user.id))).toMatchObject({ code: 1, result: { sessionsChecked: 7, mismatchedSessions: [...expected.keys()] } })

    const march = await json('--from', '2023-03-01', '--to', '2023-04-01T00:00:00Z')
    expect(march).toMatchObject({ code: 1, result: { sessionsChecked: 2, mismatchedSessions: [droppedReading, bumpedTotal] } })
    // From is inclusive, to exclusive.
    const april = await json('--from', '2023-04-01T10:00:00Z', '--to', '2023-04-03T10:00:00Z')
    expect(april).toMatchObject({ code: 1, result: { sessionsChecked: 2, mismatchedSessions: [ledgerWithoutReadings, editedReport] } })
    expect(await json('--to', '2023-03-01')).toMatchObject({ code: 0, result: { sessionsChecked: 2 } })
  }, SPAWNS_TIMEOUT)

  it('exits 2 on a usage error, an unknown session or user, or no database', async () => {
    const { untouched } = corrupted
    const runs = await Promise.all([
      cli(['--session', 'abc']),
      cli(['--session', String(untouched), '--user', String(carol.user.id)]),
      cli(['--from', 'yesterday']),
      cli(['--from', '2024-01-02', '--to', '2024-01-01']),
      cli(['--no-such-option']),
      cli(['--session']),
      cli(['--session', '999999999']),
      cli(['--user', '999999999']),
      cli([], { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/postgres' })
    ])
    for (const run of runs) {
      expect(run.code, run.stderr).toBe(2)
      expect(run.stdout).toBe('')
      expect(run.stderr).toMatch(/^error: /)
    }
    expect(runs[0]?.stderr.trim()).toBe('error: --session must be an integer >= 1, got "abc".')
    expect(runs[6]?.stderr.trim()).toBe('error: Session 999999999 does not exist.')
    expect(runs[7]?.stderr.trim()).toBe('error: User 999999999 does not exist.')
    expect(runs[8]?.stderr).toContain('error: the audit could not complete')
    const help = await cli(['--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('--statement-timeout')
  }, SPAWNS_TIMEOUT)

  it('fails with 2, naming the way out, when a chunk outlasts the statement timeout', async () => {
    // A lock the audit's read must wait for: the wait counts against the statement timeout.
    const blocker = await app.db.connect()
    blocker.on('error', () => {})
    try {
      await blocker.query('begin')
      await blocker.query('lock table session_reports in access exclusive mode')
      const run = await cli(['--statement-timeout', '200'])
      expect(run.code).toBe(2)
      expect(run.stderr).toContain('took longer than 200 ms; run again with a larger --statement-timeout or a smaller --chunk-size.')
    } finally {
      await blocker.query('rollback')
      blocker.release()
    }
  })

  describe('the periodic sample', () => {
    it('audits the newest ended sessions, sets the gauge, counts them, and logs each mismatch', async () => {
      const { expected, total } = corrupted
      const { integrityMismatches, integritySessionsAudited } = app.metrics
      const first = await app.integrityAudit.run()
      // Every ended session (the active one is skipped), all of them among the newest 20.
      expect(first?.sessionIds).toHaveLength(11)
      expect([...new Set(first?.mismatches.map(m => m.sessionId))]).toEqual([...expected.keys()])
      expect(await currentValue(integrityMismatches)).toBe(total)
      expect(await currentValue(integritySessionsAudited)).toBe(11)

      // Nothing ended since: nothing audited, and the gauge still says what the last sample found.
      expect(await app.integrityAudit.run()).toEqual({ sessionIds: [], mismatches: [] })
      expect(await currentValue(integrityMismatches)).toBe(total)

      // A second call while a sample runs joins it rather than starting another.
      const fresh = await recordByPhone(alice.token, 1)
      const [sample, joined] = await Promise.all([app.integrityAudit.run(), app.integrityAudit.run()])
      expect(joined).toBe(sample)
      expect(sample).toEqual({ sessionIds: [fresh], mismatches: [] })
      expect(await currentValue(integrityMismatches)).toBe(0)
      expect(await currentValue(integritySessionsAudited)).toBe(12)

      const scrape = (await app.inject({ url: '/metrics' })).body
      expect(scrape).toContain('\nmotion_ingest_integrity_mismatches 0\n')
      expect(scrape).toContain('\nmotion_ingest_integrity_sessions_audited_total 12\n')
    })

    it('runs on its own every INTEGRITY_AUDIT_INTERVAL_MS and logs mismatches at error level', async () => {
      const { expected, total } = corrupted
      const lines: Array<{ level: number, msg: string, sessionId?: number, check?: string }> = []
      const stream = new Writable({
        write (chunk: Buffer, _encoding, callback) {
          for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line))
          callback()
        }
      })
      const other = await build(databaseUrl, { INTEGRITY_AUDIT_INTERVAL_MS: '50' }, { logger: { level: 'error', stream } })
      const deadline = Date.now() + 10_000
      while (await currentValue(other.metrics.integritySessionsAudited) === 0) {
        if (Date.now() > deadline) throw new Error('no sample within 10 s')
        await new Promise(resolve => setTimeout(resolve, 25))
      }
      expect(await currentValue(other.metrics.integritySessionsAudited)).toBe(12)
      expect(await currentValue(other.metrics.integrityMismatches)).toBe(total)
      const logged = lines.filter(line => line.msg.startsWith('Integrity mismatch'))
      expect(logged.every(line => line.level === 50)).toBe(true)
      expect(logged.map(line => [line.sessionId, line.check])).toEqual([...expected].flatMap(([id, checks]) => checks.map(check => [id, check])))
      await other.close()
    })
  })
})
