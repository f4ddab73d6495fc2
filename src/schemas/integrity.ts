import { z } from 'zod'

/** The phone's count of readings sent against what was written, as judged when the session ends. */
export const INTEGRITY_VERDICTS = ['ok', 'mismatch', 'unreported'] as const
export const integrity = z.enum(INTEGRITY_VERDICTS)
export type Integrity = z.infer<typeof integrity>
