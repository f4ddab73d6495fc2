import { z } from 'zod'

const queryFlag = z.enum(['true', 'false']).transform(value => value === 'true')

/** A comma-separated list of positive ids, e.g. `3,17`. */
const idList = z.string().max(20_000).transform((text, ctx) => {
  const ids = text.split(',').map(part => part.trim()).filter(part => part !== '')
  if (ids.length === 0 || ids.some(id => !/^[1-9]\d{0,15}$/.test(id))) {
    ctx.addIssue({ code: 'custom', message: 'a comma-separated list of positive ids' })
    return z.NEVER
  }
  return ids.map(Number)
})

const labelName = /^[a-z][a-z0-9_]{0,39}$/

/**
 * How a session's file is laid out: the fields GET /datasets/export and
 * GET /sessions/:id/export share, so both take the same values with the
 * same defaults.
 */
const fileShape = {
  layout: z.enum(['long', 'wide', 'windows']).default('wide')
    .describe('long: the readings as stored (timestamp,sensor,x,y,z); wide: one row per instant of a fixed grid; windows: fixed-length windows of the grid'),
  format: z.enum(['csv', 'parquet']).default('csv').describe('CSV (exact doubles), or Parquet (zstd, typed columns)'),
  rate: z.coerce.number().positive().max(1000).optional()
    .describe('grid rate in Hz (wide, windows); default: the lowest declared (metadata.sampleRateHz) or median rate of the sessions (of one session: its own)'),
  window: z.string().max(20).default('2.56s')
    .refine(text => /^\s*\d+(\.\d+)?\s*(s|ms)?\s*$/.test(text) && Number.parseFloat(text) > 0, 'a length such as 2.56s or 2560ms')
    .transform(text => Number.parseFloat(text) / (text.trim().endsWith('ms') ? 1000 : 1))
    .describe('window length (windows layout), e.g. 2.56s'),
  overlap: z.coerce.number().min(0).lt(1).default(0.5).describe('share of a window the next one overlaps'),
  purity: z.coerce.number().gt(0.5).max(1).default(0.8)
    .describe('a window is kept when its most common label (unlabelled counting as one) holds at least this share of its samples')
}

/** GET /sessions/:id/export: one session's file in a dataset's layout and format. */
export const sessionExportQuery = z.object(fileShape)
export type SessionExportQuery = z.infer<typeof sessionExportQuery>

/**
 * GET /datasets/export and `motion-ingest dataset export`: which sessions,
 * and how their readings are laid out. The CLI turns its options into these
 * fields and parses them with this schema, so both check them alike.
 */
export const datasetExportQuery = z.object({
  ...fileShape,
  split: z.string().max(100).optional()
    .transform((text, ctx) => {
      if (text === undefined) return undefined
      const parts = text.split(',').map(part => part.trim())
      const fractions = parts.map(Number)
      if (parts.length !== 3 || parts.some(part => !/^\d+(\.\d+)?$/.test(part)) || Math.abs(fractions.reduce((a, b) => a + b, 0) - 1) > 1e-9) {
        ctx.addIssue({ code: 'custom', message: 'three shares adding up to 1, e.g. 0.8,0.1,0.1' })
        return z.NEVER
      }
      return fractions as [number, number, number]
    })
    .describe('train,validation,test shares, e.g. 0.8,0.1,0.1: whole users go to one side'),
  seed: z.string().min(1).max(200).default('motion-ingest').describe('the split\'s seed: the same seed puts a user on the same side in every export'),
  from: z.iso.datetime({ offset: true }).optional().describe('sessions created at or after this instant'),
  to: z.iso.datetime({ offset: true }).optional().describe('sessions created before this instant'),
  users: idList.optional().describe('only these users\' sessions, e.g. 3,17'),
  sessions: idList.optional().describe('only these sessions'),
  labels: z.string().max(2000).optional()
    .transform((text, ctx) => {
      if (text === undefined) return undefined
      const names = text.split(',').map(part => part.trim().toLowerCase()).filter(part => part !== '')
      if (names.length === 0 || names.some(name => !labelName.test(name))) {
        ctx.addIssue({ code: 'custom', message: 'a comma-separated list of label names' })
        return z.NEVER
      }
      return names
    })
    .describe('only sessions with time under any of these labels (interval labels or the default from metadata.activity)'),
  complete: queryFlag.optional().describe('true: only sessions whose completeness report found no problem'),
  includeFlagged: queryFlag.default(false).describe('true: also sessions flagged as recorded incorrectly'),
  minDuration: z.coerce.number().min(0).max(1e7).optional().describe('only sessions whose readings span at least this many seconds'),
  sampleRate: z.coerce.number().positive().max(1000).optional().describe('only sessions that declared this rate (metadata.sampleRateHz)'),
  realUserIds: queryFlag.default(false).describe('true: name users by id instead of a pseudonym')
})
export type DatasetExportQuery = z.infer<typeof datasetExportQuery>
