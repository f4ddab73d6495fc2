import type { PushResult, PushTransport } from './push-recorder.js'

/** What became of one push message: the recorder's answer, or `unauthorized` (a bad, revoked or missing key). */
export type PushOutcome = PushResult['status'] | 'unauthorized'

// A Record so that the compiler insists on every outcome the recorder can give, and no other.
const OUTCOMES: Record<PushOutcome, true> = {
  written: true,
  duplicate: true,
  nothing_to_record: true,
  test: true,
  invalid: true,
  too_many_readings: true,
  stale_app_session: true,
  other_recording_active: true,
  too_many_in_flight: true,
  storage_unavailable: true,
  saturated: true,
  user_gone: true,
  unauthorized: true
}

/** Every value of the `outcome` label, so that each series exists from the start. */
export const PUSH_OUTCOMES = Object.keys(OUTCOMES) as PushOutcome[]
export const PUSH_TRANSPORTS: readonly PushTransport[] = ['http', 'mqtt']

/** Hooks for metrics on push transports (HTTP push, MQTT). */
export interface PushObserver {
  messageHandled?: (transport: PushTransport, outcome: PushOutcome) => void
}
