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

export const sessionPage = page(session)

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
