/**
 * Counts the exports each user has running and refuses one past
 * `maxPerUser`, so that one account cannot take every export connection.
 * The count lives in this process, like the WebSocket per-user limit.
 */
export class PerUserExportLimit {
  private readonly running = new Map<number, number>()

  constructor (readonly maxPerUser: number) {
    if (!Number.isInteger(maxPerUser) || maxPerUser < 1) throw new Error(`PerUserExportLimit needs a positive integer, got ${maxPerUser}`)
  }

  /** Exports the user has running now. */
  active (userId: number): number {
    return this.running.get(userId) ?? 0
  }

  /**
   * Takes one of the user's slots and returns the function that gives it
   * back (calling it again does nothing), or undefined when the user is at
   * the limit.
   */
  tryAcquire (userId: number): (() => void) | undefined {
    const now = this.active(userId)
    if (now >= this.maxPerUser) return undefined
    this.running.set(userId, now + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      const left = this.active(userId) - 1
      if (left > 0) this.running.set(userId, left)
      else this.running.delete(userId)
    }
  }
}
