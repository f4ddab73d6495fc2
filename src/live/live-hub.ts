import type { LiveNotice } from '../db/live-channel.js'

/** One open live stream as the hub sees it. */
export interface LiveSubscriber {
  userId: number
  /** Admins see every session; a beta tester only their own. */
  seesAll: boolean
  /** Sends one event; false when the stream could not take it and was closed. */
  send: (event: string, data: unknown) => boolean
  /** Ends the stream (shutdown). */
  end: () => void
}

export type JoinResult =
  | { status: 'joined', leave: () => void }
  | { status: 'user_limit', limit: number }
  | { status: 'full', limit: number }

export interface LiveHubOptions {
  /** Streams one user may hold open (several tabs); past it, refused. */
  maxPerUser: number
  /** Streams this instance holds at most. */
  maxStreams: number
}

/**
 * This instance's live streams: who may join, and who hears each notice.
 * A notice goes to admins and to the session's owner only. The hub holds
 * no database connection; the cost of a watcher is a socket and a filter
 * per notice.
 */
export class LiveHub {
  private readonly subscribers = new Set<LiveSubscriber>()
  private readonly perUser = new Map<number, number>()

  constructor (private readonly options: LiveHubOptions) {
    for (const [name, value] of Object.entries(options)) {
      if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`LiveHub: ${name} must be a positive integer, got ${String(value)}`)
    }
  }

  get size (): number {
    return this.subscribers.size
  }

  join (subscriber: LiveSubscriber): JoinResult {
    const mine = this.perUser.get(subscriber.userId) ?? 0
    if (mine >= this.options.maxPerUser) return { status: 'user_limit', limit: this.options.maxPerUser }
    if (this.subscribers.size >= this.options.maxStreams) return { status: 'full', limit: this.options.maxStreams }
    this.subscribers.add(subscriber)
    this.perUser.set(subscriber.userId, mine + 1)
    let left = false
    return {
      status: 'joined',
      leave: () => {
        if (left) return
        left = true
        this.subscribers.delete(subscriber)
        const remaining = (this.perUser.get(subscriber.userId) ?? 1) - 1
        if (remaining > 0) this.perUser.set(subscriber.userId, remaining)
        else this.perUser.delete(subscriber.userId)
      }
    }
  }

  deliver (notice: LiveNotice): void {
    for (const subscriber of this.subscribers) {
      if (subscriber.seesAll || subscriber.userId === notice.userId) subscriber.send('batch', notice)
    }
  }

  /** Tells every stream whether notices flow; after an outage the page reloads counts (it may have missed some). */
  status (listening: boolean): void {
    for (const subscriber of this.subscribers) subscriber.send('status', { listening })
  }

  endAll (): void {
    for (const subscriber of [...this.subscribers]) subscriber.end()
  }
}
