import { afterEach, describe, expect, it } from 'vitest'
import { runLoad } from '../../bench/load.js'
import { Phone, type PhoneOptions } from '../../bench/phone.js'
import { startFakeIngestServer } from './fake-ingest-server.js'

const user = { email: 'phone@bench.test', publicKey: 'pk', token: 'token' }
let cleanup: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const fn of cleanup) await fn()
  cleanup = []
})

async function server (options: Parameters<typeof startFakeIngestServer>[0] = {}) {
  const fake = await startFakeIngestServer(options)
  cleanup.push(fake.close)
  return fake
}

function phoneOptions (urls: { wsUrl: string, baseUrl: string }, overrides: Partial<PhoneOptions> = {}): PhoneOptions {
  return {
    index: 0,
    ...urls,
    user,
    login: false,
    mode: 'flood',
    window: 4,
    timestampFormat: 'epoch',
    timeoutMs: 5000,
    floodStartMs: Date.UTC(2025, 0, 1),
    ...overrides
  }
}

describe('Phone', () => {
  it('floods pipelined batches, never more than the window unacknowledged, and ends with integrity ok', async () => {
    const fake = await server({ delayMs: 2 })
    const phone = new Phone(phoneOptions(fake, { window: 3 }))
    await phone.open()
    const start = Date.now()
    phone.start(start, start + 300)
    await new Promise(resolve => setTimeout(resolve, 350))
    const result = await phone.finish()
    expect(result.errors).toEqual([])
    expect(result.batchesAcked).toBeGreaterThan(5)
    expect(result.readingsAcked).toBe(result.batchesAcked * 375)
    expect(result.readingsSent).toBe(result.readingsAcked)
    expect(result.latenciesMs).toHaveLength(result.batchesAcked)
    expect(result.integrity).toBe('ok')
    expect(result.destroyedTotal).toBe(result.readingsAcked)
    expect(fake.written.get(result.sessionId!)!.size).toBe(result.batchesAcked)
    expect(fake.stats.maxPending).toBeGreaterThan(1)
    expect(fake.stats.maxPending).toBeLessThanOrEqual(3)
  })

  it('sends one batch per 1.25 s in real time', async () => {
    const fake = await server()
    const phone = new Phone(phoneOptions(fake, { mode: 'realtime', index: 0 }))
    await phone.open()
    const start = Date.now()
    phone.start(start, start + 2600)
    await new Promise(resolve => setTimeout(resolve, 2700))
    const result = await phone.finish()
    // Phone 0 is due at 0, 1.25 and 2.5 s.
    expect(result.batchesAcked).toBe(3)
    expect(result.errors).toEqual([])
    expect(result.integrity).toBe('ok')
  }, 10_000)

  it('resends a batch answered with storage_unavailable and is acknowledged once', async () => {
    const fake = await server({ unavailableOnce: [1] })
    const phone = new Phone(phoneOptions(fake, { window: 2 }))
    await phone.open()
    const start = Date.now()
    phone.start(start, start + 300)
    await new Promise(resolve => setTimeout(resolve, 350))
    const result = await phone.finish()
    expect(result.retries).toBe(1)
    expect(result.errors).toEqual([])
    expect(result.integrity).toBe('ok')
    expect(fake.written.get(result.sessionId!)!.has(1)).toBe(true)
  })

  it('reports a rejected batch as an error and a mismatch', async () => {
    const fake = await server({ batchSize: 10 })
    const phone = new Phone(phoneOptions(fake, { window: 1 }))
    await phone.open()
    const start = Date.now()
    phone.start(start, start + 50)
    await new Promise(resolve => setTimeout(resolve, 100))
    const result = await phone.finish()
    expect(result.errors[0]).toMatch(/^invalid_sensor_readings_batch_size/)
    expect(result.integrity).toBe('mismatch')
  })
})

describe('runLoad', () => {
  it('runs phones in separate generator processes and gathers their results', async () => {
    const fake = await server()
    const users = Array.from({ length: 4 }, (_, i) => ({ ...user, email: `p${i}@bench.test` }))
    let pids: number[] = []
    const run = await runLoad({
      mode: 'flood',
      phones: 4,
      seconds: 1,
      window: 4,
      workers: 2,
      timestampFormat: 'epoch',
      login: false,
      ...fake,
      users,
      timeoutMs: 5000
    }, { beforeStart: p => { pids = p } })
    expect(pids).toHaveLength(2)
    expect(pids).not.toContain(process.pid)
    expect(run.results).toHaveLength(4)
    for (const result of run.results) {
      expect(result.errors).toEqual([])
      expect(result.integrity).toBe('ok')
      expect(result.batchesAcked).toBeGreaterThan(0)
    }
  }, 30_000)
})
