import { z } from 'zod'
import { page, pagingQuery, storableText } from './common.js'
import { unstorableJson } from './storable.js'
import { integrity } from './integrity.js'
import { reportSummary } from './session-report.js'

export const DESTROY_REASONS = ['client', 'expired', 'admin'] as const
export const destroyReason = z.enum(DESTROY_REASONS)
export type DestroyReason = z.infer<typeof destroyReason>

export { INTEGRITY_VERDICTS, integrity, type Integrity } from './integrity.js'

/** Deepest nesting accepted in session metadata; labels are flat in practice. */
export const METADATA_MAX_DEPTH = 32

/**
 * A JSON object of metadata as sent, refused with the path of anything that
 * jsonb would not store exactly so (see unstorableJson): all of it is a client
 * mistake and must be answered as one, not fail later as an internal error or
 * be stored altered. It looks at the input before the record is built from
 * it, since the record already lacks a "__proto__" key.
 */
function storableMetadata<K extends z.core.$ZodRecordKey> (key: K) {
  return z.preprocess((input, ctx) => {
    if (input === null || typeof input !== 'object' || Array.isArray(input)) return input
    for (const { path, message } of unstorableJson(input, METADATA_MAX_DEPTH)) {
      ctx.addIssue({ code: 'custom', path, message })
    }
    return input
  }, z.record(key, z.unknown()))
}

/** Free-form labels of a session: device, OS, app version, activity, carry position, bike, terrain, notes... */
export const sessionMetadata = storableMetadata(z.string())
export type SessionMetadata = z.infer<typeof sessionMetadata>

/** Metadata as stored: already checked on the way in, so reading it back never fails. */
const storedMetadata = z.record(z.string(), z.unknown())

export const session = z.object({
  id: z.number().int(),
  userId: z.number().int(),
  createdAt: z.string().describe('ISO-8601'),
  expiresAt: z.string().describe('ISO-8601'),
  destroyedAt: z.string().nullable().describe('null while the session is active'),
  destroyReason: destroyReason.nullable(),
  totalSensorReadingsWritten: z.number().int(),
  totalSensorReadingsSent: z.number().int().nullable().describe('the count the phone reported when it destroyed the session'),
  integrity: integrity.nullable().describe('null while active'),
  metadata: storedMetadata,
  flaggedIncorrect: z.boolean().describe('the beta tester marked it as recorded incorrectly'),
  flagReason: z.string().nullable(),
  flaggedAt: z.string().nullable(),
  report: reportSummary.nullable().describe('the completeness report in short; null while active or until computed')
})
export type Session = z.infer<typeof session>

export const sessionListItem = session.extend({
  labels: z.array(z.string()).optional().describe('the names of its interval labels (its default label is metadata.activity)')
})

export const sessionPage = page(sessionListItem).extend({
  nextCursor: z.string().nullable().optional()
    .describe('pass as ?cursor= for the next page (same filters and sort); null on the last page; absent for the take/skip lists')
})

/** Keys of a metadata patch; a null value removes the key. */
const metadataPatch = storableMetadata(z.string().min(1).max(256))

export const patchSessionBody = z.object({
  metadata: metadataPatch.optional().describe('merged into the stored metadata (top-level keys); a null value removes the key'),
  flaggedIncorrect: z.boolean().optional().describe('true: recorded incorrectly (needs flagReason); false: clears the flag'),
  flagReason: storableText().trim().min(1).max(2000).optional()
}).strict()
  .refine(body => body.metadata !== undefined || body.flaggedIncorrect !== undefined, {
    message: 'send metadata, flaggedIncorrect or both'
  })
  .refine(body => (body.flaggedIncorrect === true) === (body.flagReason !== undefined), {
    message: 'flagReason is required with flaggedIncorrect: true and allowed only then',
    path: ['flagReason']
  })
export type PatchSessionInput = z.infer<typeof patchSessionBody>

/** A query-string boolean: only the words true and false, so a typo is an error rather than a silent "true". */
const queryFlag = z.enum(['true', 'false']).transform(value => value === 'true')

/** Filters of the session lists: what an admin looks for after a recording campaign. */
export const sessionFilterQuery = pagingQuery(50, 500).extend({
  integrity: integrity.optional().describe('only sessions with this sent-vs-written verdict'),
  incomplete: queryFlag.optional().describe('true: sessions whose completeness report found a problem; false: those it found whole (sessions without a report match neither)')
})

/** Orders of the session list: a field, descending with a leading minus. The id breaks ties in the same direction. */
export const SESSION_SORTS = ['-createdAt', 'createdAt', '-readings', 'readings'] as const
export const sessionSort = z.enum(SESSION_SORTS)
export type SessionSort = z.infer<typeof sessionSort>

/**
 * Where a page of the session list ended: the sort it was made for, the last
 * item's sort value (created_at as text with microseconds, or its readings
 * count) and id. Opaque to clients.
 */
export interface SessionCursor {
  sort: SessionSort
  value: string
  id: number
}

const sessionCursorFields = z.tuple([sessionSort, z.string().min(1).max(40), z.number().int().positive().max(Number.MAX_SAFE_INTEGER)])

export function encodeSessionCursor (cursor: SessionCursor): string {
  return Buffer.from(JSON.stringify([cursor.sort, cursor.value, cursor.id])).toString('base64url')
}

export function decodeSessionCursor (text: string): SessionCursor | undefined {
  try {
    const parsed = sessionCursorFields.safeParse(JSON.parse(Buffer.from(text, 'base64url').toString('utf8')))
    if (!parsed.success) return undefined
    const [sort, value, id] = parsed.data
    const valid = sort.endsWith('createdAt') ? z.iso.datetime({ offset: true }).safeParse(value).success : /^\d{1,18}$/.test(value)
    return valid ? { sort, value, id } : undefined
  } catch {
    return undefined
  }
}

const listFields = {
  flagged: queryFlag.optional().describe('true: only sessions flagged as recorded incorrectly; false: only those not flagged'),
  active: queryFlag.optional().describe('true: only sessions recording now; false: only ended ones'),
  from: z.iso.datetime({ offset: true }).optional().describe('only sessions started at or after this instant (ISO-8601 with offset)'),
  to: z.iso.datetime({ offset: true }).optional().describe('only sessions started before this instant (ISO-8601 with offset)'),
  label: z.string().trim().toLowerCase().regex(/^[a-z][a-z0-9_]{0,39}$/, 'a label name of the vocabulary').optional()
    .describe('only sessions labelled so: an interval label of this name, or metadata.activity naming it'),
  sort: sessionSort.default('-createdAt').describe('createdAt or readings (readings written); a leading minus sorts descending'),
  cursor: z.string().max(200).optional()
    .transform((text, ctx) => {
      if (text === undefined) return undefined
      const cursor = decodeSessionCursor(text)
      if (!cursor) {
        ctx.addIssue({ code: 'custom', message: 'is not a cursor this service issued (use nextCursor from the previous page)' })
        return z.NEVER
      }
      return cursor
    })
    .describe('nextCursor of the previous page: pages that neither skip nor repeat a session when sessions are added meanwhile')
}

type ListQuery = { skip: number, sort: SessionSort, cursor?: SessionCursor | undefined }
const cursorFitsQuery = (query: ListQuery) => query.cursor === undefined || (query.skip === 0 && query.cursor.sort === query.sort)
const cursorMisfit = { message: 'cursor cannot be combined with skip, and belongs to the sort it was issued for', path: ['cursor'] }

/** GET /sessions: the filters above plus the list's own; userId is for admins. */
export const sessionListQuery = sessionFilterQuery.extend({
  ...listFields,
  userId: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional()
    .describe('only this user\'s sessions (admin; a beta tester always sees only their own)')
}).refine(cursorFitsQuery, cursorMisfit)

/** GET /users/:id/sessions: the same, the user being in the path. */
export const userSessionListQuery = sessionFilterQuery.extend(listFields).refine(cursorFitsQuery, cursorMisfit)
