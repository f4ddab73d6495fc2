import { describe, expect, it } from 'vitest'
import { ConcurrencyLimit } from '../../src/concurrency-limit.js'

const tick = () => new Promise(resolve => setImmediate(resolve))

describe('ConcurrencyLimit', () => {
  it('runs at most max tasks at once, the rest in arrival order, and keeps its slots through failures', async () => {
    const limit = new ConcurrencyLimit(2)
    const release: Array<() => void> = []
    const started: number[] = []
    let peak = 0
    const task = (n: number, fail = false) => limit.run(async () => {
      started.push(n)
      peak = Math.max(peak, limit.active)
      await new Promise<void>(resolve => release.push(resolve))
      if (fail) throw new Error(`task ${n}`)
      return n
    })
    const results = [task(1, true), task(2), task(3), task(4), task(5)].map(p => p.then(v => v, (e: Error) => e.message))
    await tick()
    expect(started).toEqual([1, 2])
    while (release.length > 0) {
      release.shift()?.()
      await tick()
      await tick()
    }
    expect(await Promise.all(results)).toEqual(['task 1', 2, 3, 4, 5])
    expect(started).toEqual([1, 2, 3, 4, 5])
    expect(peak).toBe(2)
    expect(limit.active).toBe(0)
  })

  it('refuses a limit that is not a positive integer', () => {
    for (const max of [0, -1, 1.5, Number.NaN]) expect(() => new ConcurrencyLimit(max)).toThrow()
  })
})
