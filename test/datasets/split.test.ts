import { describe, expect, it } from 'vitest'
import { userNaming } from '../../src/datasets/pseudonyms.js'
import { parseSplitFractions, splitOfUser, SPLIT_NAMES } from '../../src/datasets/split.js'

describe('the train/validation/test split', () => {
  it('parses three shares adding up to 1', () => {
    expect(parseSplitFractions('0.8,0.1,0.1')).toEqual([0.8, 0.1, 0.1])
    expect(parseSplitFractions('1,0,0')).toEqual([1, 0, 0])
    for (const bad of ['0.8,0.1', '0.8,0.1,0.2', '-0.1,0.6,0.5', 'a,b,c', '']) expect(parseSplitFractions(bad), bad).toBeUndefined()
  })

  it('puts each user on one side, the same for the same seed whatever the other users, near the asked shares', () => {
    const spec = { fractions: [0.8, 0.1, 0.1] as [number, number, number], seed: 'seed-1' }
    const sides = Array.from({ length: 5000 }, (_, i) => splitOfUser(i + 1, spec))
    expect(Array.from({ length: 5000 }, (_, i) => splitOfUser(i + 1, spec))).toEqual(sides)
    const share = (name: string) => sides.filter(side => side === name).length / sides.length
    expect(share('train')).toBeCloseTo(0.8, 1)
    expect(share('validation')).toBeCloseTo(0.1, 1)
    expect(share('test')).toBeCloseTo(0.1, 1)
    // Another seed shuffles the users.
    const other = Array.from({ length: 5000 }, (_, i) => splitOfUser(i + 1, { ...spec, seed: 'seed-2' }))
    expect(other).not.toEqual(sides)
    expect(new Set(other)).toEqual(new Set(SPLIT_NAMES))
    // A zero share gets nobody.
    expect(Array.from({ length: 500 }, (_, i) => splitOfUser(i, { fractions: [0.5, 0.5, 0], seed: 's' })).includes('test')).toBe(false)
  })
})

describe('user pseudonyms', () => {
  it('are stable under a configured key, differ under another, and never show the id', () => {
    const a = userNaming({ realIds: false, key: 'secret-a' })
    expect(a.nameOf(42)).toBe(userNaming({ realIds: false, key: 'secret-a' }).nameOf(42))
    expect(a.nameOf(42)).not.toBe(userNaming({ realIds: false, key: 'secret-b' }).nameOf(42))
    expect(a.nameOf(42)).toMatch(/^u_[0-9a-f]{16}$/)
    expect(a.key).toBe('stable')
    const drawn = userNaming({ realIds: false })
    expect(drawn.key).toBe('per-export')
    expect(drawn.nameOf(42)).not.toBe(userNaming({ realIds: false }).nameOf(42))
    expect(userNaming({ realIds: true }).nameOf(42)).toBe('42')
  })
})
