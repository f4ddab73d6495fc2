import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { runBench } from '../../bench/bench.js'
import { formatReport } from '../../bench/report.js'
import { createTestDatabase } from '../helper.js'

// The CI size of `npm run bench`: proves the harness works end to end and
// that every acknowledged reading is stored. It never asserts a speed.
describe('bench smoke', () => {
  let resultsDir = ''
  afterAll(async () => { if (resultsDir) await rm(resultsDir, { recursive: true, force: true }) })

  it('runs real time and flood against the service, the baselines, the export and the report, and stores every acked reading', async () => {
    const databaseUrl = await createTestDatabase()
    resultsDir = await mkdtemp(path.join(tmpdir(), 'motion-ingest-bench-'))
    const lines: string[] = []
    const result = await runBench({
      databaseUrl,
      modes: ['realtime', 'flood'],
      realtime: { phones: 4, seconds: 3 },
      flood: { phones: 4, seconds: 3 },
      push: { phones: 3, seconds: 2 },
      workers: 2,
      naiveMaxRows: 7500,
      exportReadings: 7500,
      exportRepeats: 1,
      reportReadings: [3000],
      reportRepeats: 1,
      resultsDir,
      timeoutMs: 15_000,
      say: line => lines.push(line)
    })
    const report = formatReport(result)
    expect(result.problems, report).toEqual([])
    expect(result.correct).toBe(true)
    for (const phase of [result.realtime!, result.flood!]) {
      expect(phase.readingsAcked, phase.mode).toBeGreaterThan(0)
      expect(phase.errors, phase.errorSamples.join('\n')).toBe(0)
      expect(phase.failedToStart).toBe(0)
      expect(phase.integrityOk).toBe(4)
      expect(phase.verification).toMatchObject({ ok: true, sessions: 4, duplicateReadings: 0, mismatchedSessions: 0 })
      expect(phase.verification.storedReadings).toBe(phase.readingsAcked)
      expect(phase.verification.sessionTotals).toBe(phase.readingsAcked)
      expect(phase.ackLatencyMs.count).toBe(phase.readingsAcked / 375)
      // Every phone is in the spread, and the fewest and most acked bound the total.
      const spread = phase.phoneSpread
      expect(spread.medianAckMs.count).toBe(4)
      expect(spread.readingsAcked.min * 4).toBeLessThanOrEqual(phase.readingsAcked)
      expect(spread.readingsAcked.max * 4).toBeGreaterThanOrEqual(phase.readingsAcked)
      expect(spread.readingsAcked.min).toBeGreaterThan(0)
      // The WAL the phase wrote holds at least every reading's row.
      expect(phase.checkpoints.walBytes).toBeGreaterThan(phase.readingsAcked * 50)
      expect(phase.checkpoints.requested).toBeGreaterThanOrEqual(0)
    }
    expect(Object.keys(result.database.settings).sort()).toEqual(['checkpoint_timeout', 'max_wal_size', 'shared_buffers', 'synchronous_commit', 'wal_buffers', 'wal_compression'])
    expect(report).toMatch(/Database settings: .*max_wal_size \S+/)
    expect(report).toContain('realtime: per phone: median ack ms typical')
    expect(result.realtime!.keptUp).toBe(true)
    // The HTTP-push phase: every message answered 200, and what the 200s counted is what is stored.
    const push = result.push!
    expect(push.errors, push.errorSamples.join('\n')).toBe(0)
    expect(push.messagesSent).toBe(6)
    expect(push.messagesAcked).toBe(6)
    expect(push.readingsAcked).toBe(6 * 300)
    expect(push.verification).toMatchObject({ ok: true, sessions: 3, duplicateReadings: 0, mismatchedSessions: 0 })
    expect(push.verification.storedReadings).toBe(push.readingsAcked)
    expect(push.verification.sessionTotals).toBe(push.readingsAcked)
    expect(result.ratios.pushVsRealtime).toBeGreaterThan(0)
    expect(report).toContain('HTTP push: 3 Sensor Logger phones')
    expect(result.limit!.rows).toBe(result.flood!.readingsAcked)
    expect(result.naive!.rows).toBe(7500)
    expect(result.export!.status, result.export!.message).toBe('measured')
    // The first plot of the export session: its summary counted every reading of it.
    expect(result.plot).toMatchObject({ status: 'measured', readings: result.export!.readings })
    expect(report).toContain('First plot of the same session')
    expect(report).toContain('limit: binary COPY')
    // The report phase: the report of a session with built-in defects finds exactly those (never a speed).
    expect(result.sessionReport).toMatchObject({ status: 'measured', repeats: 1 })
    const [size] = result.sessionReport!.sizes
    expect(size!.problems).toEqual([])
    expect(size!.verified).toBe(true)
    expect(size!.readings).toBe(3000)
    expect(size!.summary).toMatchObject({ lostBatches: 1, gaps: 12, duplicateTimestamps: 0, missingSensors: [] })
    expect(report).toContain('Completeness report of a 3,000-reading session')
  }, 90_000)
})
