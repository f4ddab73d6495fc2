import { z } from 'zod'
import { page, pagingQuery, storableText } from './common.js'
import { integrity } from './integrity.js'
import { reportSummary } from './session-report.js'

export const DESTROY_REASONS = ['client', 'expired', 'admin'] as const
export const destroyReason = z.enum(DESTROY_REASONS)
export type DestroyReason = z.infer<typeof destroyReason>

export { INTEGRITY_VERDICTS, integrity, type Integrity } from './integrity.js'

/** Deepest nesting accepted in session metadata; labels are flat in practice. */
export const METADATA_MAX_DEPTH = 32

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

function textProblem (text: string): string | undefined {
  if (text.includes('\u0000')) return 'must not contain NUL (\\u0000) characters'
  if (LONE_SURROGATE.test(text)) return 'must not contain unpaired UTF-16 surrogates'
  return undefined
}

/**
 * Why a metadata value cannot be stored as jsonb, if it cannot. PostgreSQL's
 * jsonb refuses \u0000 and unpaired surrogates, and JSON.stringify and the
 * jsonb parser both recurse, so deep nesting would overflow a stack: all of
 * them are client mistakes and must be answered as such, not fail later as
 * internal errors. Iterative, so the check itself cannot overflow.
 */
function metadataProblem (root: unknown): string | undefined {
  const stack: Array<[unknown, number]> = [[root, 1]]
  while (stack.length > 0) {
    const [value, depth] = stack.pop() as [unknown, number]
    if (typeof value === 'string') {
      const problem = textProblem(value)
      if (problem) return `strings ${problem}`
      continue
    }
    if (value === null || typeof value !== 'object') continue
    if (depth > METADATA_MAX_DEPTH) return `must not nest deeper than ${METADATA_MAX_DEPTH} levels`
    for (const [key, child] of Object.entries(value)) {
      const problem = textProblem(key)
      if (problem) return `keys ${problem}`
      stack.push([child, depth + 1])
    }
  }
  return undefined
}

function refuseUnstorable (metadata: Record<string, unknown>, ctx: z.RefinementCtx): void {
  const problem = metadataProblem(metadata)
  if (problem) ctx.addIssue({ code: 'custom', message: `metadata ${problem}` })
}

/** Free-form labels of a session: device, OS, app version, activity, carry position, bike, terrain, notes... */
export const sessionMetadata = z.record(z.string(), z.unknown()).superRefine(refuseUnstorable)
export type SessionMetadata = z.infer<typeof sessionMetadata>

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
  metadata: sessionMetadata,
  flaggedIncorrect: z.boolean().describe('the beta tester marked it as recorded incorrectly'),
  flagReason: z.string().nullable(),
  flaggedAt: z.string().nullable(),
  report: reportSummary.nullable().describe('the completeness report in short; null while active or until computed')
})
export type Session = z.infer<typeof session>

export const sessionPage = page(session)

/** Keys of a metadata patch; a null value removes the key. */
const metadataPatch = z.record(z.string().min(1).max(256), z.unknown())
  // What jsonb cannot store (NUL, unpaired surrogates, deep nesting) is refused here rather than fail in the database.
  .superRefine(refuseUnstorable)

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
