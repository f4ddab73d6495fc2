import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { defaultBenchOptions } from '../../bench/bench.js'
import { runInstancesBench } from '../../bench/instances.js'
import { formatInstancesReport } from '../../bench/instances-report.js'
import { haproxyOrSkip } from '../fixtures/haproxy.js'
import { createTestDatabase } from '../helper.js'

const binary = haproxyOrSkip()

// The CI size of `npm run bench -- --instances 2`: proves the harness, never a speed.
describe.skipIf(!binary)('bench --instances smoke', () => {
  let resultsDir = ''
  afterAll(async () => { if (resultsDir) await rm(resultsDir, { recursive: true, force: true }) })

  it('runs one instance, then two behind HAProxy with one killed mid-stream; its phones resume and every acked reading is stored once', async () => {
    const databaseUrl = await createTestDatabase()
    resultsDir = await mkdtemp(path.join(tmpdir(), 'motion-ingest-instances-'))
    const lines: string[] = []
    const result = await runInstancesBench({
      instances: 2,
      killAtSeconds: 2,
      mode: 'realtime',
      phones: 6,
      seconds: 5,
      bench: defaultBenchOptions({ databaseUrl, workers: 2, resultsDir, timeoutMs: 15_000, say: line => lines.push(line) })
    })
    const report = formatInstancesReport(result)
    expect(result.problems, report).toEqual([])
    expect(result.correct).toBe(true)
    for (const phase of [result.single, result.balanced]) {
      expect(phase.allAcked, phase.label).toBe(true)
      expect(phase.integrityOk).toBe(6)
      expect(phase.verification).toMatchObject({ ok: true, sessions: 6, duplicateReadings: 0, mismatchedSessions: 0 })
      expect(phase.verification.storedReadings).toBe(phase.readingsAcked)
    }
    const kill = result.balanced.kill!
    // Spread over both, then all on the survivor; every phone of the killed one resumed.
    const before = new Map(kill.spreadBeforeKill.map(server => [server.name, server.current]))
    expect(before.get('instance-1')).toBeGreaterThan(0)
    expect(before.get('instance-2')).toBeGreaterThan(0)
    expect(before.get('instance-1')! + before.get('instance-2')!).toBe(6)
    expect(kill.phonesResumed).toBe(before.get('instance-1'))
    expect(kill.spreadAtEnd.find(server => server.name === 'instance-1')?.current).toBe(0)
    expect(kill.markedDownAfterMs).toBeDefined()
    expect(report).toContain('balanced ÷ single')
  }, 120_000)
})
