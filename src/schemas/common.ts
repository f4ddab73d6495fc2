import { z } from 'zod'

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

export const idParam = z.object({ id: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER) })
