import type { EndedSession } from '../db/sessions/session-lifecycle.js'

/** What the registry needs from a connection: to be told its session ended. */
export interface SessionHolder {
  sessionEnded: (ended: EndedSession) => void
  /** The session was deleted (with its user): the socket has nothing left to record for. */
  sessionDeleted: () => void
}

/**
 * Which of this instance's sockets hold which session. It is only routing:
 * the sessions themselves live in the database, and a phone that reconnects
 * to another instance resumes there.
 */
export class SessionRegistry {
  private readonly holders = new Map<number, Set<SessionHolder>>()

  attach (sessionId: number, holder: SessionHolder): void {
    let set = this.holders.get(sessionId)
    if (!set) this.holders.set(sessionId, set = new Set())
    set.add(holder)
  }

  detach (sessionId: number, holder: SessionHolder): void {
    const set = this.holders.get(sessionId)
    if (!set) return
    set.delete(holder)
    if (set.size === 0) this.holders.delete(sessionId)
  }

  sessionIds (): number[] {
    return [...this.holders.keys()]
  }

  /** Tells every local holder of the session, once, and forgets them. */
  notifyEnded (ended: EndedSession): void {
    const set = this.holders.get(ended.id)
    if (!set) return
    this.holders.delete(ended.id)
    for (const holder of set) holder.sessionEnded(ended)
  }

  /** Tells every local holder of a session that was deleted, and forgets them. */
  notifyDeleted (sessionId: number): void {
    const set = this.holders.get(sessionId)
    if (!set) return
    this.holders.delete(sessionId)
    for (const holder of set) holder.sessionDeleted()
  }
}
