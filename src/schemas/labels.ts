import { z } from 'zod'
import { epochMillisToMicros, parseIsoTimestampMicros } from './timestamps.js'
import { storableText } from './common.js'

/** Labels one session holds at most: a label a second for almost three hours, and a bound on what one session costs a write. */
export const MAX_LABELS_PER_SESSION = 10_000
/** Names the vocabulary holds at most: a list a person picks from, and a bound on every unknown-label message. */
export const MAX_VOCABULARY_SIZE = 100

/**
 * Why a label was refused, the same words on every transport: the WebSocket's
 * `label_refused` carries them as they are, HTTP in upper case
 * (`LABEL_OVERLAP`).
 */
export const LABEL_REFUSAL_CODES = ['unknown_label', 'invalid_label_interval', 'label_outside_session', 'label_overlap', 'label_limit'] as const
export type LabelRefusalCode = typeof LABEL_REFUSAL_CODES[number]

const VOCABULARY_NAME = /^[a-z][a-z0-9_]{0,39}$/

/** A vocabulary name as given: compared and stored in lower case, so "Cycling" is cycling. */
export const labelName = z.string().max(100).trim().toLowerCase()
  .regex(VOCABULARY_NAME, 'must be 1-40 characters a-z, 0-9 or _, starting with a letter')

export const labelNote = storableText().trim().min(1).max(2000)

/**
 * An instant of a label, in microseconds since the epoch: ISO-8601 with an
 * offset (finer digits are cut to the microsecond, as for readings) or epoch
 * milliseconds. How far it may lie from the session is the labels' rule
 * (src/labels/label-rules.ts), not a fixed window.
 */
export const labelTimestamp = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const micros = typeof value === 'string' ? parseIsoTimestampMicros(value) : Number.isFinite(value) ? epochMillisToMicros(value) : undefined
  if (micros === undefined) {
    ctx.addIssue({ code: 'custom', message: 'must be an ISO-8601 timestamp with an offset, e.g. 2026-05-01T12:00:00.123456Z, or epoch milliseconds' })
    return z.NEVER
  }
  if (micros < 0 || !Number.isSafeInteger(micros)) {
    ctx.addIssue({ code: 'custom', message: 'must lie between 1970 and 2255' })
    return z.NEVER
  }
  return micros
})

const endAfterStart = { message: 'endTime must be later than startTime', path: ['endTime'] }

/** The `label` client event: endTime absent makes an open label, closed by the next label or the session's end. */
export const labelEventData = z.object({
  startTime: labelTimestamp.describe('ISO-8601 with offset, or epoch milliseconds'),
  endTime: labelTimestamp.optional().describe('absent: open until the next label or the session\'s end'),
  label: labelName,
  note: labelNote.optional()
}).strict().refine(data => data.endTime === undefined || data.endTime > data.startTime, endAfterStart)
export type LabelEventData = z.output<typeof labelEventData>

export const createLabelBody = z.object({
  startTime: labelTimestamp.describe('ISO-8601 with offset (microseconds kept), or epoch milliseconds'),
  endTime: labelTimestamp.describe('exclusive: the label covers startTime <= t < endTime'),
  label: labelName.describe('a name of the vocabulary (GET /labels/vocabulary), any case'),
  note: labelNote.optional()
}).strict().refine(body => body.endTime > body.startTime, endAfterStart)

export const patchLabelBody = z.object({
  startTime: labelTimestamp.optional(),
  endTime: labelTimestamp.optional().describe('also closes an open label'),
  label: labelName.optional(),
  note: labelNote.nullable().optional().describe('null removes the note')
}).strict().refine(body => Object.keys(body).length > 0, { message: 'send startTime, endTime, label or note' })
  .refine(body => body.startTime === undefined || body.endTime === undefined || body.endTime > body.startTime, endAfterStart)
export type PatchLabelInput = z.output<typeof patchLabelBody>

/** An instant in a query string: ISO-8601 with an offset, to the microsecond. */
const queryInstant = z.string().max(40).transform((text, ctx) => {
  const micros = parseIsoTimestampMicros(text)
  if (micros === undefined) {
    ctx.addIssue({ code: 'custom', message: 'must be an ISO-8601 timestamp with an offset' })
    return z.NEVER
  }
  return micros
})

export const labelsQuery = z.object({
  from: queryInstant.optional().describe('only labels that end after this instant (ISO-8601 with offset)'),
  to: queryInstant.optional().describe('only labels that start before this instant')
})

export const sessionLabelParams = z.object({
  id: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  labelId: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER)
})

export const labelView = z.object({
  id: z.number().int(),
  sessionId: z.number().int(),
  startTime: z.string().describe('ISO-8601 UTC with microseconds'),
  endTime: z.string().nullable().describe('exclusive; null for an open label, which runs to the next label or the session\'s end'),
  label: z.string(),
  note: z.string().nullable(),
  createdBy: z.number().int().nullable().describe('the user who added it; null from the CLI or once that user is deleted'),
  createdAt: z.string()
})
export type LabelView = z.infer<typeof labelView>

export const recordedLabel = labelView.extend({
  duplicate: z.boolean().describe('true: the same label was already stored (a resend); nothing changed'),
  closedLabelId: z.number().int().nullable().describe('the open label this one closed at its startTime, if any')
})

export const sessionLabels = z.object({
  sessionId: z.number().int(),
  active: z.boolean().describe('the session is recording'),
  readings: z.object({ first: z.string(), last: z.string() }).nullable().describe('the session\'s first and last reading; null without readings'),
  labelRange: z.object({ from: z.string(), to: z.string() }).nullable()
    .describe('where a new label may lie now: from <= startTime and endTime <= to; null when none may (an ended session without readings)'),
  defaultLabel: z.string().nullable().describe('metadata.activity when it names a vocabulary label (any case): the label wherever no interval label applies'),
  unmatchedActivity: z.string().nullable().describe('metadata.activity when it names no vocabulary label: the session is then unlabelled outside its interval labels'),
  labels: z.array(labelView).describe('in time order')
})

export const deletedLabel = z.object({ id: z.number().int(), deleted: z.literal(true) })

export const vocabularyEntry = z.object({
  name: z.string(),
  description: z.string().nullable(),
  createdAt: z.string()
})
export const vocabularyList = z.object({ items: z.array(vocabularyEntry) })

export const createVocabularyBody = z.object({
  name: labelName,
  description: storableText().trim().min(1).max(200).optional()
}).strict()

export const vocabularyNameParam = z.object({ name: labelName })
export const deletedVocabularyEntry = z.object({ name: z.string(), deleted: z.literal(true) })
