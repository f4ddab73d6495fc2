import type { DestroyReason } from '../schemas/sessions.js'

/** Why a batch was not acknowledged, whichever transport brought it. */
export type BatchRejection = 'batch_size' | 'schema' | 'session_not_found' | 'storage_unavailable'

/** Hooks for metrics on the recording core; every member optional. */
export interface RecordingObserver {
  sessionCreated?: () => void
  /** Counted once per session, by the instance that ended it. */
  sessionEnded?: (reason: DestroyReason) => void
  batchRejected?: (reason: BatchRejection) => void
}
