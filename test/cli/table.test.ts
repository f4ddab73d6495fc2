import { describe, expect, it } from 'vitest'
import { formatTable } from '../../src/cli/table.js'

describe('formatTable', () => {
  it('aligns columns under a header and a rule, numbers to the right, with no quotes or index', () => {
    const text = formatTable([
      { id: 7, name: 'Ada', createdAt: new Date('2026-12-03T07:18:31.317Z'), note: null },
      { id: 12, name: 'Grace Hopper', createdAt: new Date('2026-12-03T08:00:00.000Z'), note: 'x' }
    ])
    expect(text.split('\n')).toEqual([
      'id  name          createdAt                 note',
      '--  ------------  ------------------------  ----',
      ' 7  Ada           2026-12-03T07:18:31.317Z',
      '12  Grace Hopper  2026-12-03T08:00:00.000Z  x'
    ])
  })

  it('prints nothing for no rows', () => {
    expect(formatTable([])).toBe('')
  })
})
