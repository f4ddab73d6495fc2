import { z } from 'zod'
import { errorResponse } from './common.js'

/** The answer to a Sensor Logger push message the service accepted (HTTP 200). */
export const pushAccepted = z.union([
  z.object({
    status: z.enum(['written', 'duplicate']).describe('duplicate: a retried message, already stored, acknowledged again'),
    sessionId: z.number().int(),
    batchId: z.number().int().describe('the message\'s messageId'),
    written: z.number().int().describe('readings stored from this message (0 for a duplicate)'),
    skipped: z.number().int().describe('payload entries not recorded: other sensors (location, battery, …)'),
    totalSensorReadingsWritten: z.number().int().describe('readings stored in the session so far')
  }),
  z.object({
    status: z.literal('nothing_to_record'),
    sessionId: z.number().int().nullable(),
    batchId: z.number().int(),
    written: z.literal(0),
    skipped: z.number().int()
  }),
  z.object({ status: z.literal('test'), test: z.literal(true), written: z.literal(0) })
])
export type PushAccepted = z.infer<typeof pushAccepted>

/** 400 INVALID_PUSH: the body is not a Sensor Logger message, with the path of each problem. */
export const pushInvalid = errorResponse.extend({
  issues: z.array(z.object({ path: z.array(z.union([z.string(), z.number()])), message: z.string() }))
})
