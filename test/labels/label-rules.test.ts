import { describe, expect, it } from 'vitest'
import {
  ACTIVE_LEAD_US, defaultLabelOf, judgeLabelChange, judgeNewLabel, labelRange, labelSegments, openLabelEnd,
  type ExistingLabel, type LabelDraft, type NewLabelContext, type SessionExtent
} from '../../src/labels/label-rules.js'

const S = 1_000_000
const T0 = 1_700_000_000 * S
const ended: SessionExtent = { active: false, createdAtUs: T0, nowUs: T0 + 3600 * S, firstReadingUs: T0 + 10 * S, lastReadingUs: T0 + 100 * S }
const active: SessionExtent = { active: true, createdAtUs: T0, nowUs: T0 + 50 * S, firstReadingUs: T0 + 1 * S, lastReadingUs: T0 + 49 * S }

const draft = (startS: number, endS: number | null, label = 'walking', note: string | null = null): LabelDraft =>
  ({ startUs: T0 + startS * S, endUs: endS === null ? null : T0 + endS * S, label, note })
const stored = (id: number, startS: number, endS: number | null, label = 'walking', note: string | null = null): ExistingLabel =>
  ({ id, ...draft(startS, endS, label, note) })

function context (extent: SessionExtent, touching: ExistingLabel[] = [], overrides: Partial<NewLabelContext> = {}): NewLabelContext {
  return { sessionId: 7, extent, known: true, vocabulary: () => ['cycling', 'walking'], labelCount: touching.length, limit: 10, touching, ...overrides }
}

describe('labelRange', () => {
  it('is the readings of an ended session, up to just after the last one', () => {
    expect(labelRange(ended)).toEqual({ fromUs: T0 + 10 * S, toUs: T0 + 100 * S + 1 })
    expect(labelRange({ ...ended, firstReadingUs: null, lastReadingUs: null })).toBeNull()
  })

  it('reaches a minute around an active session\'s creation, readings and now', () => {
    expect(labelRange(active)).toEqual({ fromUs: T0 - ACTIVE_LEAD_US, toUs: T0 + 50 * S + ACTIVE_LEAD_US })
    // A phone clock ahead of the server's: its readings widen the range.
    const ahead = { ...active, firstReadingUs: T0 - 120 * S, lastReadingUs: T0 + 500 * S }
    expect(labelRange(ahead)).toEqual({ fromUs: T0 - 120 * S - ACTIVE_LEAD_US, toUs: T0 + 500 * S + ACTIVE_LEAD_US })
    expect(labelRange({ ...active, firstReadingUs: null, lastReadingUs: null })).toEqual({ fromUs: T0 - ACTIVE_LEAD_US, toUs: T0 + 50 * S + ACTIVE_LEAD_US })
  })
})

describe('judgeNewLabel', () => {
  it('inserts a label within an ended session\'s readings, the last reading included', () => {
    expect(judgeNewLabel({ ...draft(10, 50), endUs: T0 + 100 * S + 1 }, context(ended))).toEqual({ status: 'insert', close: null })
  })

  it('refuses a label outside the readings of an ended session, by a microsecond', () => {
    expect(judgeNewLabel({ ...draft(10, 50), startUs: T0 + 10 * S - 1 }, context(ended))).toMatchObject({ status: 'refused', code: 'label_outside_session' })
    expect(judgeNewLabel({ ...draft(10, 50), endUs: T0 + 100 * S + 2 }, context(ended))).toMatchObject({ status: 'refused', code: 'label_outside_session' })
    expect(judgeNewLabel(draft(10, 50), context({ ...ended, firstReadingUs: null, lastReadingUs: null })))
      .toMatchObject({ status: 'refused', code: 'label_outside_session', message: expect.stringContaining('without readings') })
  })

  it('refuses a label on an active session more than a minute before its creation or past now', () => {
    expect(judgeNewLabel(draft(-59, 10), context(active))).toMatchObject({ status: 'insert' })
    expect(judgeNewLabel(draft(-61, 10), context(active))).toMatchObject({ code: 'label_outside_session' })
    expect(judgeNewLabel(draft(100, 111), context(active))).toMatchObject({ code: 'label_outside_session' })
    expect(judgeNewLabel(draft(109, null), context(active))).toMatchObject({ status: 'insert' })
    expect(judgeNewLabel(draft(111, null), context(active))).toMatchObject({ code: 'label_outside_session' })
  })

  it('refuses an unknown label, naming the vocabulary', () => {
    expect(judgeNewLabel(draft(10, 20, 'skiing'), context(ended, [], { known: false })))
      .toEqual({ status: 'refused', code: 'unknown_label', message: '"skiing" is not in the label vocabulary (cycling, walking)', labelId: null })
  })

  it('refuses an interval that ends before it starts', () => {
    expect(judgeNewLabel(draft(20, 20), context(ended))).toMatchObject({ code: 'invalid_label_interval' })
  })

  it('refuses any overlap, whatever the label, with the label in the way; touching ends are no overlap', () => {
    const other = stored(3, 20, 30, 'cycling')
    expect(judgeNewLabel(draft(25, 40), context(ended, [other]))).toMatchObject({ status: 'refused', code: 'label_overlap', labelId: 3 })
    expect(judgeNewLabel(draft(25, 40, 'cycling'), context(ended, [other]))).toMatchObject({ code: 'label_overlap', labelId: 3 })
    expect(judgeNewLabel(draft(30, 40), context(ended, [stored(3, 20, 30)]))).toEqual({ status: 'insert', close: null })
  })

  it('acknowledges a resend of a stored label as a duplicate, even once it is outside the range', () => {
    const same = stored(4, 20, 30, 'walking', 'bridge')
    expect(judgeNewLabel(draft(20, 30, 'walking', 'bridge'), context(ended, [same]))).toEqual({ status: 'duplicate', labelId: 4 })
    expect(judgeNewLabel(draft(20, 30, 'walking', 'other note'), context(ended, [same]))).toMatchObject({ code: 'label_overlap' })
    expect(judgeNewLabel(draft(20, 31, 'walking', 'bridge'), context(ended, [same]))).toMatchObject({ code: 'label_overlap' })
    expect(judgeNewLabel(draft(20, 30, 'walking', 'bridge'), context({ ...ended, firstReadingUs: T0 + 25 * S }, [same])))
      .toEqual({ status: 'duplicate', labelId: 4 })
  })

  it('closes an open label at the start of a later one; an open label resent after that is a duplicate', () => {
    const open = stored(5, 20, null)
    expect(judgeNewLabel(draft(30, null, 'cycling'), context(active, [open]))).toEqual({ status: 'insert', close: { id: 5, endUs: T0 + 30 * S } })
    expect(judgeNewLabel(draft(30, 40, 'cycling'), context(active, [open]))).toEqual({ status: 'insert', close: { id: 5, endUs: T0 + 30 * S } })
    expect(judgeNewLabel(draft(20, null, 'cycling'), context(active, [open]))).toMatchObject({ code: 'label_overlap', labelId: 5 })
    expect(judgeNewLabel(draft(10, 25, 'cycling'), context(active, [open]))).toMatchObject({ code: 'label_overlap', labelId: 5 })
    expect(judgeNewLabel(draft(20, null), context(active, [stored(5, 20, 30)]))).toEqual({ status: 'duplicate', labelId: 5 })
  })

  it('refuses a label past the session\'s bound, but not a resend', () => {
    const full = context(ended, [stored(9, 20, 30)], { labelCount: 10 })
    expect(judgeNewLabel(draft(40, 50), full)).toMatchObject({ code: 'label_limit' })
    expect(judgeNewLabel(draft(20, 30), full)).toEqual({ status: 'duplicate', labelId: 9 })
  })
})

describe('judgeLabelChange', () => {
  const current = stored(1, 20, 30)
  const change = (next: LabelDraft, touching: ExistingLabel[] = [], extent = ended, known = true) =>
    judgeLabelChange(current, next, { sessionId: 7, extent, known, vocabulary: () => ['walking'], touching })

  it('checks the range only when the times change', () => {
    const after = { ...ended, firstReadingUs: T0 + 25 * S }
    expect(change(draft(20, 30, 'walking', 'a note'), [], after)).toEqual({ status: 'update' })
    expect(change(draft(21, 30), [], after)).toMatchObject({ code: 'label_outside_session' })
  })

  it('refuses an overlap with another label and an unknown name', () => {
    expect(change(draft(20, 35), [current, stored(2, 30, 40, 'cycling')])).toMatchObject({ code: 'label_overlap', labelId: 2 })
    expect(change(draft(20, 35), [current])).toEqual({ status: 'update' })
    expect(change(draft(20, 30, 'skiing'), [], ended, false)).toMatchObject({ code: 'unknown_label' })
    expect(change(draft(30, 30), [])).toMatchObject({ code: 'invalid_label_interval' })
  })
})

describe('defaultLabelOf', () => {
  const vocabulary = new Set(['cycling', 'in_vehicle'])
  it('matches metadata.activity trimmed and in any case', () => {
    expect(defaultLabelOf({ activity: ' Cycling' }, vocabulary)).toEqual({ defaultLabel: 'cycling', unmatchedActivity: null })
    expect(defaultLabelOf({ activity: 'IN_VEHICLE' }, vocabulary)).toEqual({ defaultLabel: 'in_vehicle', unmatchedActivity: null })
  })
  it('reports an activity outside the vocabulary and leaves the session unlabelled', () => {
    expect(defaultLabelOf({ activity: 'Mountain biking' }, vocabulary)).toEqual({ defaultLabel: null, unmatchedActivity: 'Mountain biking' })
    expect(defaultLabelOf({ activity: { kind: 'bike' } }, vocabulary)).toEqual({ defaultLabel: null, unmatchedActivity: '{"kind":"bike"}' })
    expect(defaultLabelOf({}, vocabulary)).toEqual({ defaultLabel: null, unmatchedActivity: null })
  })
})

describe('labelSegments', () => {
  it('gives every instant of a range its label: interval labels where they apply, the default elsewhere', () => {
    const labels = [stored(2, 30, 40, 'cycling'), stored(1, 10, 20)]
    const segments = labelSegments(labels, 'still', T0, T0 + 50 * S, () => null)
    expect(segments.map(s => [(s.startUs - T0) / S, (s.endUs - T0) / S, s.label, s.labelId])).toEqual([
      [0, 10, 'still', null], [10, 20, 'walking', 1], [20, 30, 'still', null], [30, 40, 'cycling', 2], [40, 50, 'still', null]
    ])
  })

  it('clips labels to the range and runs an open label to its end', () => {
    const labels = [stored(1, 10, 20), stored(2, 30, null, 'cycling')]
    const segments = labelSegments(labels, null, T0 + 15 * S, T0 + 60 * S, start => openLabelEnd(ended, start))
    expect(segments.map(s => [(s.startUs - T0) / S, (s.endUs - T0) / S, s.label])).toEqual([
      [15, 20, 'walking'], [20, 30, null], [30, 60, 'cycling']
    ])
    expect(openLabelEnd(ended, T0)).toBe(T0 + 100 * S + 1)
    expect(openLabelEnd(active, T0)).toBeNull()
  })
})
