/**
 * At most `size` holders at once; `acquire()` waits, first come first
 * served, while every slot is taken.
 */
export class Slots {
  private taken = 0
  private readonly waiters: Array<() => void> = []

  constructor (private readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`Slots: size must be a positive integer, got ${size}`)
  }

  get inUse (): number {
    return this.taken
  }

  async acquire (): Promise<void> {
    if (this.taken < this.size) {
      this.taken++
      return
    }
    // The releasing holder hands its slot over: `taken` stays as it is.
    await new Promise<void>(resolve => this.waiters.push(resolve))
  }

  release (): void {
    const next = this.waiters.shift()
    if (next) next()
    else this.taken--
  }
}
