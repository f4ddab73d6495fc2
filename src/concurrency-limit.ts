/**
 * Runs async work at most `max` at a time; the rest waits its turn in
 * arrival order. A finished task hands its slot straight to the next waiter,
 * so the count never exceeds `max` and never loses a slot, whether the work
 * resolves or throws.
 */
export class ConcurrencyLimit {
  private running = 0
  private readonly waiting: Array<() => void> = []

  constructor (private readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new Error(`ConcurrencyLimit needs a positive integer, got ${max}`)
  }

  /** Tasks running now. */
  get active (): number {
    return this.running
  }

  async run<T> (work: () => Promise<T>): Promise<T> {
    if (this.running >= this.max) await new Promise<void>(resolve => this.waiting.push(resolve))
    else this.running++
    try {
      return await work()
    } finally {
      const next = this.waiting.shift()
      if (next) next()
      else this.running--
    }
  }
}
