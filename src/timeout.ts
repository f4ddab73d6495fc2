/** Rejection of withTimeout when the deadline passes first. */
export class TimeoutError extends Error {
  readonly code = 'TIMEOUT'
  constructor (readonly timeoutMs: number, what: string) {
    super(`${what}: no answer within ${timeoutMs} ms`)
    this.name = 'TimeoutError'
  }
}

/**
 * Settles like `promise`, or rejects with a TimeoutError after `ms`. The
 * losing promise keeps running (a stuck query cannot be cancelled from here),
 * so its later rejection is swallowed instead of becoming an unhandled one.
 */
export async function withTimeout<T> (promise: Promise<T>, ms: number, what = 'operation'): Promise<T> {
  promise.catch(() => {})
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(ms, what)), ms)
  })
  try {
    return await Promise.race([promise, deadline])
  } finally {
    clearTimeout(timer)
  }
}
