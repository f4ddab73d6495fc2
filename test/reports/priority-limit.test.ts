import { describe, expect, it } from 'vitest'
import { PriorityLimit, TaskRefusedError, type Admission } from '../../src/priority-limit.js'

const tick = async () => {
  for (let i = 0; i < 3; i++) await new Promise(resolve => setImmediate(resolve))
}

type Level = 'urgent' | 'normal' | 'low'
const URGENCY: Level[] = ['urgent', 'normal', 'low']

/** Tasks that run until released, recording the order they started in. */
function gatedTasks () {
  const started: string[] = []
  const gates = new Map<string, () => void>()
  const work = (name: string, fail = false) => async () => {
    started.push(name)
    await new Promise<void>(resolve => gates.set(name, resolve))
    if (fail) throw new Error(name)
    return name
  }
  const release = async (name: string) => {
    const gate = gates.get(name)
    if (!gate) throw new Error(`${name} is not running`)
    gates.delete(name)
    gate()
    await tick()
  }
  return { started, work, release, running: () => [...gates.keys()] }
}

const resultOf = <T>(admission: Admission<T>) => {
  if (!admission.admitted) throw new Error(`refused: ${admission.reason}`)
  return admission.result
}

describe('PriorityLimit', () => {
  it('runs at most maxRunning at once, most urgent first, in arrival order within a level, and keeps its slots through failures', async () => {
    const limit = new PriorityLimit<Level>({ maxRunning: 2, urgency: URGENCY })
    const { started, work, release } = gatedTasks()
    const results = [
      limit.run(work('low1', true), { level: 'low' }),
      limit.run(work('low2'), { level: 'low' }),
      limit.run(work('low3'), { level: 'low' }),
      limit.run(work('normal1'), { level: 'normal' }),
      limit.run(work('urgent1'), { level: 'urgent' }),
      limit.run(work('urgent2'), { level: 'urgent' })
    ].map(p => p.then(v => v, (e: Error) => `failed ${e.message}`))
    await tick()
    expect(started).toEqual(['low1', 'low2'])
    expect(limit.waiting).toBe(4)
    await release('low1')
    expect(started).toEqual(['low1', 'low2', 'urgent1'])
    for (const name of ['low2', 'urgent1', 'urgent2', 'normal1', 'low3']) await release(name)
    expect(started).toEqual(['low1', 'low2', 'urgent1', 'urgent2', 'normal1', 'low3'])
    expect(await Promise.all(results)).toEqual(['failed low1', 'low2', 'low3', 'normal1', 'urgent1', 'urgent2'])
    expect(limit.running).toBe(0)
    expect(limit.waiting).toBe(0)
  })

  it('keeps the slots above startsBelow for more urgent levels: an urgent task never waits behind a storm of low ones', async () => {
    const limit = new PriorityLimit<Level>({ maxRunning: 2, urgency: URGENCY, levels: { low: { startsBelow: 1 }, normal: { startsBelow: 1 } } })
    const { started, work, release } = gatedTasks()
    const storm = Array.from({ length: 10 }, (_, i) => limit.run(work(`low${i}`), { level: 'low' }))
    await tick()
    expect(started).toEqual(['low0'])
    const urgent = limit.run(work('urgent'), { level: 'urgent' })
    await tick()
    expect(started).toEqual(['low0', 'urgent'])
    // A normal task is more urgent than the storm but may not take the kept slot either.
    const normal = limit.run(work('normal'), { level: 'normal' })
    await tick()
    expect(started).toEqual(['low0', 'urgent'])
    await release('urgent')
    expect(await urgent).toBe('urgent')
    expect(started).toEqual(['low0', 'urgent'])
    await release('low0')
    expect(started).toEqual(['low0', 'urgent', 'normal'])
    await release('normal')
    expect(await normal).toBe('normal')
    for (let i = 1; i < 10; i++) await release(`low${i}`)
    expect(await Promise.all(storm)).toHaveLength(10)
  })

  it('lets a request join a waiting task with its key, and never runs two tasks with one key at once', async () => {
    const limit = new PriorityLimit<Level>({ maxRunning: 2, urgency: URGENCY })
    const { started, work, release } = gatedTasks()
    const first = limit.schedule(work('a1'), { level: 'low', key: 'a' })
    expect(first).toMatchObject({ admitted: true, joined: false })
    await tick()
    // a1 runs: the next request for 'a' waits for it even though a slot is free, and later ones join it.
    const second = limit.schedule(work('a2'), { level: 'low', key: 'a' })
    const third = limit.schedule(work('a3'), { level: 'low', key: 'a' })
    const other = limit.schedule(work('b1'), { level: 'low', key: 'b' })
    expect(second).toMatchObject({ admitted: true, joined: false })
    expect(third).toMatchObject({ admitted: true, joined: true })
    await tick()
    expect(started).toEqual(['a1', 'b1'])
    expect(limit.waiting).toBe(1)
    await release('a1')
    expect(started).toEqual(['a1', 'b1', 'a2'])
    await release('a2')
    await release('b1')
    expect(await resultOf(first)).toBe('a1')
    expect(await resultOf(second)).toBe('a2')
    expect(await resultOf(third)).toBe('a2')
    expect(await resultOf(other)).toBe('b1')
    expect(started).not.toContain('a3')
  })

  it('refuses a group\'s task past maxPerGroup (a joined request takes no place) and admits again once one finishes', async () => {
    const limit = new PriorityLimit<Level>({ maxRunning: 1, urgency: URGENCY, maxPerGroup: 2 })
    const { work, release } = gatedTasks()
    const a = limit.schedule(work('a'), { level: 'low', key: 'a', group: 'u1' })
    const b = limit.schedule(work('b'), { level: 'low', key: 'b', group: 'u1' })
    expect(limit.schedule(work('b again'), { level: 'low', key: 'b', group: 'u1' })).toMatchObject({ admitted: true, joined: true })
    expect(limit.schedule(work('c'), { level: 'low', key: 'c', group: 'u1' })).toEqual({ admitted: false, reason: 'group-full' })
    expect(limit.schedule(work('other user'), { level: 'low', group: 'u2' })).toMatchObject({ admitted: true })
    expect(limit.groupSize('u1')).toBe(2)
    await tick()
    await release('a')
    expect(await resultOf(a)).toBe('a')
    expect(limit.groupSize('u1')).toBe(1)
    expect(limit.schedule(work('c'), { level: 'low', key: 'c', group: 'u1' })).toMatchObject({ admitted: true, joined: false })
    await release('b')
    expect(await resultOf(b)).toBe('b')
    await release('other user')
    await release('c')
    expect(limit.groupSize('u1')).toBe(0)
  })

  it('refuses a bounded level\'s task while maxWaiting tasks wait, never an unbounded level\'s', async () => {
    const limit = new PriorityLimit<Level>({ maxRunning: 1, urgency: URGENCY, levels: { low: { maxWaiting: 2 } } })
    const { work, release, running } = gatedTasks()
    const admitted = [limit.schedule(work('low0'), { level: 'low' })]
    await tick()
    admitted.push(limit.schedule(work('low1'), { level: 'low' }), limit.schedule(work('low2'), { level: 'low' }))
    expect(limit.schedule(work('low3'), { level: 'low' })).toEqual({ admitted: false, reason: 'queue-full' })
    await expect(limit.run(work('low4'), { level: 'low' })).rejects.toBeInstanceOf(TaskRefusedError)
    const urgent = Array.from({ length: 5 }, (_, i) => limit.run(work(`urgent${i}`), { level: 'urgent' }))
    expect(limit.waiting).toBe(7)
    while (running().length > 0) await release(running()[0] as string)
    expect(await Promise.all(urgent)).toHaveLength(5)
    expect(await Promise.all(admitted.map(resultOf))).toEqual(['low0', 'low1', 'low2'])
  })

  it('refuses options it cannot honour', () => {
    for (const maxRunning of [0, -1, 1.5, Number.NaN]) expect(() => new PriorityLimit({ maxRunning, urgency: ['a'] })).toThrow()
    expect(() => new PriorityLimit({ maxRunning: 2, urgency: [] })).toThrow()
    expect(() => new PriorityLimit({ maxRunning: 2, urgency: ['a', 'a'] })).toThrow()
    expect(() => new PriorityLimit({ maxRunning: 2, urgency: ['a'], levels: { a: { startsBelow: 3 } } })).toThrow()
    expect(() => new PriorityLimit({ maxRunning: 2, urgency: ['a'], levels: { a: { maxWaiting: 0 } } })).toThrow()
    expect(() => new PriorityLimit({ maxRunning: 2, urgency: ['a'], maxPerGroup: 0 })).toThrow()
    const limit = new PriorityLimit({ maxRunning: 1, urgency: ['a'] })
    expect(() => limit.schedule(async () => 1, { level: 'b' as 'a' })).toThrow()
  })
})
