import { z } from 'zod'
import { textProblem } from './storable.js'

/**
 * A string bound for a PostgreSQL text column or parameter. PostgreSQL cannot
 * store NUL (0x00) in text and fails the query (22021), and an unpaired
 * surrogate would arrive as U+FFFD, so 'k\udc00' and 'k\ufffd' would be one
 * key: both are refused here as a 400 that names the field.
 */
export const storableText = () => z.string().superRefine((text, ctx) => {
  const problem = textProblem(text)
  if (problem) ctx.addIssue({ code: 'custom', message: problem })
})

export const errorResponse = z.object({
  error: z.string().describe('Stable machine-readable code, e.g. NOT_FOUND'),
  message: z.string()
})

/** `take`/`skip` paging with a default and a maximum, rejecting negatives and fractions. */
export function pagingQuery (defaultTake: number, maxTake: number) {
  return z.object({
    take: z.coerce.number().int().min(1).max(maxTake).default(defaultTake),
    skip: z.coerce.number().int().min(0).max(1_000_000_000).default(0)
  })
}

/** A page of a list: its items, how many match in all, and the paging asked for. */
export function page<T extends z.ZodTypeAny> (item: T) {
  return z.object({
    items: z.array(item),
    total: z.number().int(),
    take: z.number().int(),
    skip: z.number().int()
  })
}

export const idParam = z.object({ id: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER) })
