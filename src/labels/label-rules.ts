import { formatMicros } from '../schemas/timestamps.js'
import type { LabelRefusalCode } from '../schemas/labels.js'

/**
 * The rules of interval labels, pure: where a label may lie, what it may not
 * overlap, what an open label becomes, and a session's default label. Times
 * are microseconds since the epoch in the phone's clock, like readings.
 * Every transport (HTTP, the WebSocket, the CLI) reaches them through
 * SessionLabels, which feeds them what it read under the session's row lock.
 */

/**
 * How far a label on an active session may reach before the session's
 * creation and beyond now: the phone stamps labels with its own clock, which
 * may be a few seconds off the server's.
 */
export const ACTIVE_LEAD_US = 60_000_000

/** What the rules need to know of a session. */
export interface SessionExtent {
  /** Recording: not ended, not past its expiry. */
  active: boolean
  createdAtUs: number
  /** The database's clock when the facts were read. */
  nowUs: number
  firstReadingUs: number | null
  lastReadingUs: number | null
}

/** A label's interval, [startUs, endUs); endUs null for an open label. */
export interface LabelDraft {
  startUs: number
  endUs: number | null
  label: string
  note: string | null
}

export interface ExistingLabel extends LabelDraft {
  id: number
}

/** Where labels may lie: fromUs <= start and end <= toUs. */
export interface LabelRange {
  fromUs: number
  toUs: number
}

export interface LabelRefusal {
  status: 'refused'
  code: LabelRefusalCode
  message: string
  /** The stored label in the way (label_overlap). */
  labelId: number | null
}

const refused = (code: LabelRefusalCode, message: string, labelId: number | null = null): LabelRefusal =>
  ({ status: 'refused', code, message, labelId })

/**
 * An active session takes labels from a minute before its creation (or its
 * first reading, if earlier) to a minute past now (or its last reading, if
 * later). An ended one takes them within its readings: from the first
 * reading to just after the last (last + 1 µs, so that a label can cover
 * the last reading). An ended session without readings takes none: null.
 */
export function labelRange (extent: SessionExtent): LabelRange | null {
  const { firstReadingUs: first, lastReadingUs: last } = extent
  if (extent.active) {
    return {
      fromUs: Math.min(extent.createdAtUs, first ?? extent.createdAtUs) - ACTIVE_LEAD_US,
      toUs: Math.max(extent.nowUs, last ?? extent.nowUs) + ACTIVE_LEAD_US
    }
  }
  if (first === null || last === null) return null
  return { fromUs: first, toUs: last + 1 }
}

/**
 * Where an open label ends when it is read: after the last reading once the
 * session has ended (never before its start), nowhere yet (null) while it records.
 */
export function openLabelEnd (extent: Pick<SessionExtent, 'active' | 'lastReadingUs'>, startUs: number): number | null {
  if (extent.active) return null
  return Math.max(startUs, (extent.lastReadingUs ?? startUs - 1) + 1)
}

const INFINITY = Number.POSITIVE_INFINITY

/** Whether two half-open intervals share an instant; an open end is unbounded. */
export function overlaps (a: { startUs: number, endUs: number | null }, b: { startUs: number, endUs: number | null }): boolean {
  return a.startUs < (b.endUs ?? INFINITY) && b.startUs < (a.endUs ?? INFINITY)
}

const sameLabel = (a: LabelDraft, b: LabelDraft) => a.label === b.label && a.note === b.note

function outOfRange (draft: LabelDraft, extent: SessionExtent, sessionId: number): LabelRefusal | undefined {
  const range = labelRange(extent)
  if (!range) return refused('label_outside_session', `Session ${sessionId} ended without readings: there is nothing to label`)
  const end = draft.endUs ?? (extent.active ? undefined : range.toUs)
  const where = extent.active
    ? `an active session takes labels from ${formatMicros(range.fromUs)} to ${formatMicros(range.toUs)} (a minute around its creation, its readings and now)`
    : `an ended session takes labels within its readings, ${formatMicros(range.fromUs)} to ${formatMicros(range.toUs)} (just after the last reading)`
  if (draft.startUs < range.fromUs || draft.startUs >= range.toUs || (end !== undefined && end > range.toUs)) {
    return refused('label_outside_session', `The label lies outside session ${sessionId}: ${where}`)
  }
  return undefined
}

export interface NewLabelContext {
  sessionId: number
  extent: SessionExtent
  /** The label is a vocabulary name. */
  known: boolean
  /** The vocabulary, for the message of an unknown label. */
  vocabulary: () => string[]
  labelCount: number
  limit: number
  /** The session's labels that share an instant with the draft (open ones unbounded); others are ignored. */
  touching: ExistingLabel[]
}

export type NewLabelVerdict =
  /** Store it; close: the open label it ends, at its start. */
  | { status: 'insert', close: { id: number, endUs: number } | null }
  /** The same label is stored already: a resend. */
  | { status: 'duplicate', labelId: number }
  | LabelRefusal

/**
 * A new label. Checked in this order: its interval, a resend of a stored
 * label (the same start, end, label and note, or for an open label the same
 * start, label and note, whatever its end has become: acknowledged, never
 * stored twice), the vocabulary, the session's range, overlaps, the
 * session's bound. An open label that starts before the new one ends where
 * the new one starts; any other overlap, whatever its label, is refused, so
 * a session's labels never share an instant.
 */
export function judgeNewLabel (draft: LabelDraft, context: NewLabelContext): NewLabelVerdict {
  const { sessionId, extent } = context
  if (draft.endUs !== null && draft.endUs <= draft.startUs) return refused('invalid_label_interval', 'endTime must be later than startTime')
  const resent = context.touching.find(stored => stored.startUs === draft.startUs && sameLabel(stored, draft) &&
    (draft.endUs === null || stored.endUs === draft.endUs))
  if (resent) return { status: 'duplicate', labelId: resent.id }
  if (!context.known) return refused('unknown_label', `"${draft.label}" is not in the label vocabulary (${context.vocabulary().join(', ')})`)
  const outside = outOfRange(draft, extent, sessionId)
  if (outside) return outside
  let close: { id: number, endUs: number } | null = null
  for (const stored of context.touching) {
    if (stored.endUs === null && stored.startUs < draft.startUs) {
      close = { id: stored.id, endUs: draft.startUs }
      continue
    }
    if (overlaps(stored, draft)) return overlapRefusal(stored)
  }
  if (context.labelCount >= context.limit) {
    return refused('label_limit', `Session ${sessionId} holds ${context.labelCount} labels, the most a session may; delete or merge some first`)
  }
  return { status: 'insert', close }
}

function overlapRefusal (stored: ExistingLabel): LabelRefusal {
  const end = stored.endUs === null ? 'open' : formatMicros(stored.endUs)
  return refused('label_overlap', `The label overlaps label ${stored.id} (${stored.label}, ${formatMicros(stored.startUs)} to ${end}); a session's labels may not share an instant`, stored.id)
}

export interface LabelChangeContext {
  sessionId: number
  extent: SessionExtent
  known: boolean
  vocabulary: () => string[]
  /** Other labels of the session that share an instant with the changed one. */
  touching: ExistingLabel[]
}

export type LabelChangeVerdict = { status: 'update' } | LabelRefusal

/**
 * A change to a stored label. The range is checked only when its times
 * change, so a label accepted while the session recorded can still be
 * renamed or annotated after it ended. A change never closes or moves
 * another label: any overlap is refused.
 */
export function judgeLabelChange (current: ExistingLabel, next: LabelDraft, context: LabelChangeContext): LabelChangeVerdict {
  if (next.endUs !== null && next.endUs <= next.startUs) return refused('invalid_label_interval', 'endTime must be later than startTime')
  if (next.label !== current.label && !context.known) {
    return refused('unknown_label', `"${next.label}" is not in the label vocabulary (${context.vocabulary().join(', ')})`)
  }
  if (next.startUs !== current.startUs || next.endUs !== current.endUs) {
    const outside = outOfRange(next, context.extent, context.sessionId)
    if (outside) return outside
  }
  const other = context.touching.find(stored => stored.id !== current.id && overlaps(stored, next))
  return other ? overlapRefusal(other) : { status: 'update' }
}

export interface DefaultLabel {
  defaultLabel: string | null
  /** metadata.activity when it names no vocabulary label (as JSON text when it is not a string). */
  unmatchedActivity: string | null
}

/**
 * A session's metadata.activity is its label wherever no interval label
 * applies, when it names a vocabulary label: compared trimmed and in lower
 * case, so "Cycling" is cycling. Anything else leaves the session unlabelled
 * there, and is reported so that it can be fixed.
 */
export function defaultLabelOf (metadata: Record<string, unknown>, vocabulary: ReadonlySet<string>): DefaultLabel {
  const activity = metadata.activity
  if (activity === undefined || activity === null) return { defaultLabel: null, unmatchedActivity: null }
  if (typeof activity === 'string') {
    const name = activity.trim().toLowerCase()
    return vocabulary.has(name) ? { defaultLabel: name, unmatchedActivity: null } : { defaultLabel: null, unmatchedActivity: activity }
  }
  return { defaultLabel: null, unmatchedActivity: JSON.stringify(activity) }
}

/** A stretch of time with one label: an interval label's (labelId), the default (labelId null), or none. */
export interface LabelSegment {
  startUs: number
  endUs: number
  label: string | null
  labelId: number | null
}

/**
 * The label of every instant of [fromUs, toUs) as consecutive segments: the
 * lookup a training-set export cuts windows with. Interval labels win where
 * they apply, the default label fills the rest. Labels must not overlap (the
 * rules above keep it so); an open label runs to openEnd(its start) (null: unbounded).
 */
export function labelSegments (
  labels: readonly ExistingLabel[], defaultLabel: string | null, fromUs: number, toUs: number, openEnd: (startUs: number) => number | null
): LabelSegment[] {
  const segments: LabelSegment[] = []
  let cursor = fromUs
  const fill = (untilUs: number) => {
    if (untilUs > cursor) segments.push({ startUs: cursor, endUs: untilUs, label: defaultLabel, labelId: null })
  }
  for (const stored of [...labels].sort((a, b) => a.startUs - b.startUs)) {
    const endUs = Math.min(stored.endUs ?? openEnd(stored.startUs) ?? INFINITY, toUs)
    const startUs = Math.max(stored.startUs, cursor)
    if (endUs <= startUs) continue
    fill(startUs)
    segments.push({ startUs, endUs, label: stored.label, labelId: stored.id })
    cursor = endUs
  }
  fill(toUs)
  return segments
}
