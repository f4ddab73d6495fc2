import type { Readable } from 'node:stream'

/**
 * Calls `onStall` once when `stream` goes unread for `timeoutMs` in a row:
 * not yet flowing, or paused by pipe() because its destination stopped
 * draining (a Readable emits 'pause' and 'resume' as pipe() applies and
 * lifts backpressure). A source that is merely slow to produce keeps flowing
 * and never counts as stalled. Watching ends when the stream closes.
 */
export function watchForStall (stream: Readable, timeoutMs: number, onStall: () => void): void {
  let timer: NodeJS.Timeout | undefined
  const stop = () => {
    clearTimeout(timer)
    timer = undefined
  }
  const start = () => {
    if (timer) return
    timer = setTimeout(() => {
      unwatch()
      onStall()
    }, timeoutMs)
    // A stalled download must not keep a process alive that is otherwise done.
    timer.unref()
  }
  const unwatch = () => {
    stop()
    stream.off('pause', start)
    stream.off('resume', stop)
    stream.off('close', unwatch)
  }
  stream.on('pause', start)
  stream.on('resume', stop)
  stream.on('close', unwatch)
  if (stream.readableFlowing !== true) start()
}
