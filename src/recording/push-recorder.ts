import { findActiveSessionOrigin, findAppSessionPart, type AppSessionPart } from '../db/sessions/app-sessions.js'
import type { Queryable } from '../db/queryable.js'
import type { SessionState } from '../db/sessions/session-lifecycle.js'
import type { ValidationIssue } from '../schemas/ws-events.js'
import type { BatchIntake } from './batch-intake.js'
import type { RecordingSessions } from './recording-sessions.js'
import {
  chooseAccelerationSource, isTestPush, parseSensorLoggerMessage, toReadings,
  type AccelerationSource, type SensorLoggerMessage
} from './sensor-logger-format.js'

export interface PushRecorderOptions {
  db: Queryable
  sessions: RecordingSessions
  intake: BatchIntake
  /** Most readings one message may carry. */
  maxReadingsPerMessage: number
  /** Messages of one user being processed at once on this instance; more are refused (429). */
  maxInflightPerUser: number
}

/** Which transport brought a message; recorded in the session's metadata. */
export type PushTransport = 'http' | 'mqtt'

export type PushResult =
  /** Committed (or found in the ledger: a retried message), counts of this message. */
  | { status: 'written' | 'duplicate', sessionId: number, batchId: number, written: number, skipped: number, totalSensorReadingsWritten: number }
  /** Nothing in the message is a motion reading (only location, battery, …): nothing to write. */
  | { status: 'nothing_to_record', sessionId: number | null, batchId: number, skipped: number }
  /** The app's connection test. */
  | { status: 'test' }
  | { status: 'invalid', issues: ValidationIssue[] }
  | { status: 'too_many_readings', received: number, limit: number }
  /** A late message of an app recording the user has since moved on from. */
  | { status: 'stale_app_session', appSessionId: string, sessionId: number }
  /** The user is recording over the WebSocket: one active session per user. */
  | { status: 'other_recording_active', sessionId: number }
  | { status: 'too_many_in_flight', limit: number }
  /** Not written; resending is safe. */
  | { status: 'storage_unavailable', message: string }
  /** The pipeline holds its maximum of readings; retry shortly. */
  | { status: 'saturated' }
  | { status: 'user_gone' }

type Resolved =
  | { ok: true, session: SessionState, source: AccelerationSource }
  | { ok: false, result: PushResult }

const SENSOR_LOGGER = 'sensor-logger'

const sourceOf = (part: AppSessionPart, message: SensorLoggerMessage): AccelerationSource => {
  const recorded = part.metadata.accelerationSource
  return recorded === 'totalacceleration' || recorded === 'accelerometer+gravity' ? recorded : chooseAccelerationSource(message)
}

/**
 * Records push clients' messages (Sensor Logger over HTTP push or MQTT) on
 * the recording core: the app's recording id finds or starts the session,
 * its messageId is the batch id (so a retried message is acknowledged, not
 * written twice), and the readings go through the same intake as every
 * other transport.
 *
 * Session rules: a new app recording ends the user's previous push session
 * (reason client) and starts one; a late message of a recording the user has
 * moved on from is refused, never reopening it; a recording outliving the
 * session TTL continues in a new session linked to the previous one
 * (`previousSessionId`, `part`); a user recording over the WebSocket is not
 * taken over.
 */
export class PushRecorder {
  private readonly inflight = new Map<number, number>()

  constructor (private readonly options: PushRecorderOptions) {}

  async receive (userId: number, body: string, transport: PushTransport, receivedAtMs = Date.now()): Promise<PushResult> {
    const held = this.inflight.get(userId) ?? 0
    if (held >= this.options.maxInflightPerUser) return { status: 'too_many_in_flight', limit: this.options.maxInflightPerUser }
    this.inflight.set(userId, held + 1)
    try {
      return await this.record(userId, body, transport, receivedAtMs)
    } finally {
      const left = (this.inflight.get(userId) ?? 1) - 1
      if (left > 0) this.inflight.set(userId, left)
      else this.inflight.delete(userId)
    }
  }

  private async record (userId: number, body: string, transport: PushTransport, receivedAtMs: number): Promise<PushResult> {
    const parsed = parseSensorLoggerMessage(body)
    if (!parsed.ok) return { status: 'invalid', issues: parsed.issues }
    const message = parsed.message
    if (isTestPush(message)) return { status: 'test' }
    const limit = this.options.maxReadingsPerMessage
    const { intake } = this.options
    if (intake.saturated) return { status: 'saturated' }

    const resolved = await this.resolveSession(userId, message, transport)
    if (!resolved.ok) return resolved.result
    const { session, source } = resolved
    const { readings, skipped } = toReadings(message, source)
    const batchId = message.messageId
    if (readings.length === 0) return { status: 'nothing_to_record', sessionId: session.id, batchId, skipped }
    if (readings.length > limit) return { status: 'too_many_readings', received: readings.length, limit }

    const verdict = await intake.submit({ session, batchId, readings, receivedAtMs, size: { atMost: limit } })
    switch (verdict.status) {
      case 'written':
      case 'duplicate':
        return { status: verdict.status, sessionId: session.id, batchId, written: verdict.status === 'written' ? readings.length : 0, skipped, totalSensorReadingsWritten: verdict.totalSensorReadingsWritten }
      case 'invalid_schema':
        return { status: 'invalid', issues: verdict.issues.map(({ path, message }) => ({ path: ['readings', ...path], message })) }
      case 'invalid_size':
        return { status: 'too_many_readings', received: verdict.received, limit: verdict.expected }
      case 'session_not_found':
        // The session ended between the lookup and the commit (an admin, expiry): the next
        // message of this recording continues or is refused by the session rules.
        return { status: 'storage_unavailable', message: 'the session ended while this message was written; send it again' }
      case 'storage_unavailable':
        return { status: 'storage_unavailable', message: verdict.message }
      case 'conflict':
        // The messageId is already recorded with other readings: these are not stored, and a retry would not be.
        return { status: 'invalid', issues: [{ path: ['messageId'], message: 'already recorded with other readings' }] }
    }
  }

  /** The session this message belongs to, started or continued as the session rules say. */
  private async resolveSession (userId: number, message: SensorLoggerMessage, transport: PushTransport): Promise<Resolved> {
    const { db, sessions } = this.options
    const appSessionId = message.sessionId
    const part = await findAppSessionPart(db, userId, appSessionId)
    if (part && part.destroyedAt === null && part.expiresAt.getTime() > Date.now()) {
      return { ok: true, session: { id: part.id, userId, createdAt: part.createdAt, expiresAt: part.expiresAt }, source: sourceOf(part, message) }
    }
    // Ended by the phone's next recording or an admin: a late message never reopens it.
    if (part && part.destroyReason !== null && part.destroyReason !== 'expired') {
      return { ok: false, result: { status: 'stale_app_session', appSessionId, sessionId: part.id } }
    }
    const active = await findActiveSessionOrigin(db, userId)
    if (active && active.appSessionId === null) return { ok: false, result: { status: 'other_recording_active', sessionId: active.id } }
    if (active && active.appSessionId !== appSessionId) {
      // Another app recording is active. If this one has been seen before, this message is late.
      if (part) return { ok: false, result: { status: 'stale_app_session', appSessionId, sessionId: part.id } }
      await sessions.endByClient(active.id, userId)
    }
    const source = part ? sourceOf(part, message) : chooseAccelerationSource(message)
    const metadata: Record<string, unknown> = {
      source: SENSOR_LOGGER,
      transport,
      appSessionId,
      ...(message.deviceId === undefined ? {} : { deviceId: message.deviceId }),
      accelerationSource: source,
      accelerationUnits: 'm/s^2',
      ...(part ? { previousSessionId: part.id, part: part.part + 1 } : {})
    }
    // Lost batches count from the first message this session receives (the app does not say its
    // message ids start at 0); a continuation counts from right after the previous part, so
    // messages lost at the switch are counted too.
    const firstBatchId = part?.highestBatchId != null ? Math.min(message.messageId, part.highestBatchId + 1) : message.messageId
    const started = await sessions.start(userId, metadata, { appSessionId, firstBatchId })
    if (started.status === 'user_gone') return { ok: false, result: { status: 'user_gone' } }
    if (started.status === 'metadata_too_large') return { ok: false, result: { status: 'invalid', issues: [{ path: ['sessionId'], message: 'too long' }] } }
    if (started.status === 'resumed') {
      // Another message (on this or another instance) started a session first: ours only if it is this recording's.
      const winner = await findAppSessionPart(db, userId, appSessionId)
      if (winner?.id !== started.session.id) return { ok: false, result: { status: 'other_recording_active', sessionId: started.session.id } }
    }
    return { ok: true, session: started.session, source }
  }
}
