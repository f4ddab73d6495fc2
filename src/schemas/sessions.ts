import { z } from 'zod'

export const DESTROY_REASONS = ['client', 'expired', 'admin'] as const
export const destroyReason = z.enum(DESTROY_REASONS)
export type DestroyReason = z.infer<typeof destroyReason>

export const INTEGRITY_VERDICTS = ['ok', 'mismatch', 'unreported'] as const
export const integrity = z.enum(INTEGRITY_VERDICTS)
export type Integrity = z.infer<typeof integrity>

/** Free-form labels of a session: device, OS, app version, activity, carry position, bike, terrain, notes... */
export const sessionMetadata = z.record(z.string(), z.unknown())
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
  flaggedAt: z.string().nullable()
})
export type Session = z.infer<typeof session>
