import type { Queryable } from '../db/queryable.js'
import {
  createOrResumeSession, destroySession, endExpiredSessions, findActiveSession, findEndedSessions, findGoneSessions,
  type EndedSession, type SessionOrigin, type SessionState
} from '../db/sessions/session-lifecycle.js'
import { findSessionById } from '../db/sessions/sessions-repository.js'
import { isForeignKeyViolation } from '../db/errors.js'
import type { SessionReporter } from '../reports/session-reporter.js'
import type { SessionMetadata } from '../schemas/sessions.js'
import type { RecordingObserver } from './observer.js'
import type { SessionRegistry } from './session-registry.js'

export interface RecordingSessionsOptions {
  db: Queryable
  reporter: SessionReporter
  registry: SessionRegistry
  ttlSeconds: number
  metadataMaxBytes: number
  observer?: RecordingObserver
}

export type StartResult =
  | {
    status: 'created' | 'resumed'
    session: SessionState
    /** The user's sessions that had expired and were ended by this call, with their reports; already announced. */
    expired: EndedSession[]
  }
  | { status: 'metadata_too_large', bytes: number, limit: number }
  /** The user was deleted after the transport authenticated them. */
  | { status: 'user_gone' }

export type EndResult =
  /** This call ended the session (with its report summary), and its other holders were told. */
  | { status: 'ended', ended: EndedSession }
  /** It had already ended (an admin, expiry, another instance): how it ended. */
  | { status: 'ended_before', ended: EndedSession }
  | { status: 'not_found' }

export type AdminEndResult =
  | { status: 'ended', ended: EndedSession }
  /** Past its expiry and waiting for the reaper: it ended now, as expired. */
  | { status: 'expired', ended: EndedSession }
  | { status: 'already_ended', reason: string }
  | { status: 'not_found' }
  /** Another instance's reaper is ending it right now. */
  | { status: 'busy' }

/** A reaper pass ends at most this many expired sessions per statement. */
const EXPIRE_LIMIT = 1000

/**
 * The session lifecycle, for every transport: create or resume, end by the
 * client, an admin or expiry, and announce the end. Announcing is one
 * sequence whoever ends a session: compute its report summary (bounded
 * wait), count it once, and tell the holders on this instance. Sessions live
 * in the database; this object keeps nothing but its collaborators.
 */
export class RecordingSessions {
  constructor (private readonly options: RecordingSessionsOptions) {}

  get ttlSeconds (): number {
    return this.options.ttlSeconds
  }

  /** The user's active session, unless it is past its expiry (the reaper ends it). */
  async findActive (userId: number): Promise<SessionState | undefined> {
    const active = await findActiveSession(this.options.db, userId)
    return active && active.expiresAt.getTime() > Date.now() ? active : undefined
  }

  /** The user's active session, or a new one with this metadata. */
  async start (userId: number, metadata: SessionMetadata, origin?: SessionOrigin): Promise<StartResult> {
    const bytes = Buffer.byteLength(JSON.stringify(metadata))
    const limit = this.options.metadataMaxBytes
    if (bytes > limit) return { status: 'metadata_too_large', bytes, limit }
    let result
    try {
      result = await createOrResumeSession(this.options.db, userId, this.options.ttlSeconds, metadata, origin)
    } catch (err) {
      if (isForeignKeyViolation(err)) return { status: 'user_gone' }
      throw err
    }
    const expired: EndedSession[] = []
    for (const ended of result.expired) expired.push(await this.announce(ended, true))
    if (result.created) this.options.observer?.sessionCreated?.()
    return { status: result.created ? 'created' : 'resumed', session: result.session, expired }
  }

  /**
   * The client ends its session (totalSent: what it says it sent, for the
   * integrity verdict). A session past its expiry ends as expired.
   */
  async endByClient (sessionId: number, userId: number, totalSent?: number): Promise<EndResult> {
    const { db } = this.options
    const justEnded = await destroySession(db, sessionId, 'client', totalSent, userId) ??
      (await endExpiredSessions(db, userId)).find(e => e.id === sessionId)
    if (justEnded) return { status: 'ended', ended: await this.announce(justEnded, true) }
    const endedBefore = await this.findEnded(sessionId)
    return endedBefore ? { status: 'ended_before', ended: endedBefore } : { status: 'not_found' }
  }

  /** An admin ends a session; its phone hears of it from whichever instance holds its socket. */
  async endByAdmin (sessionId: number): Promise<AdminEndResult> {
    const { db } = this.options
    const ended = await destroySession(db, sessionId, 'admin')
    if (ended) return { status: 'ended', ended: await this.announce(ended, true) }
    const existing = await findSessionById(db, sessionId)
    if (!existing) return { status: 'not_found' }
    if (existing.destroyedAt) return { status: 'already_ended', reason: existing.destroyReason ?? 'unknown' }
    const expired = (await endExpiredSessions(db, existing.userId)).find(e => e.id === sessionId)
    if (!expired) return { status: 'busy' }
    return { status: 'expired', ended: await this.announce(expired, true) }
  }

  /** How a session ended, with its report summary; undefined while it is active or when it does not exist. */
  async findEnded (sessionId: number): Promise<EndedSession | undefined> {
    const [ended] = await findEndedSessions(this.options.db, [sessionId])
    return ended && await this.options.reporter.withSummary(ended)
  }

  /**
   * The reaper's part: end every expired session in the database (whichever
   * instance holds it, or none), then tell the holders here of every session
   * that ended by any means or was deleted. Returns how many it expired.
   */
  async reap (shouldStop: () => boolean = () => false): Promise<number> {
    const { db, registry, observer } = this.options
    let total = 0
    // A backlog (say, after an outage) is ended a thousand at a time.
    for (let more = true; more;) {
      const expired = await endExpiredSessions(db, undefined, EXPIRE_LIMIT)
      for (const ended of expired) observer?.sessionEnded?.(ended.reason)
      total += expired.length
      more = expired.length === EXPIRE_LIMIT && !shouldStop()
    }
    const gone = await findGoneSessions(db, registry.sessionIds())
    // Each holder hears as soon as its session's report is ready.
    for (const ended of gone.ended) await this.announce(ended, false)
    for (const sessionId of gone.deleted) registry.notifyDeleted(sessionId)
    return total
  }

  /**
   * The one "session ended" sequence: the report summary (a bounded wait),
   * the metric (endedHere: this call ended it, so it is counted once), and
   * the holders on this instance.
   */
  private async announce (ended: EndedSession, endedHere: boolean): Promise<EndedSession> {
    const withReport = await this.options.reporter.withSummary(ended)
    if (endedHere) this.options.observer?.sessionEnded?.(withReport.reason)
    this.options.registry.notifyEnded(withReport)
    return withReport
  }
}
