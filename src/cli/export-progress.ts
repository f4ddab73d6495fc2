import { Transform } from 'node:stream'
import cliProgress from 'cli-progress'

/**
 * A pass-through that counts CSV lines (readings after the header) and, when
 * `label` is given, draws a progress bar on stderr against the session's
 * expected reading count. Call `stop()` once the export is over.
 */
export function exportProgress (expected: number, label?: string): { counter: Transform, rows: () => number, stop: () => void } {
  let newlines = 0
  const bar = label === undefined
    ? undefined
    : new cliProgress.SingleBar({
      format: `${label} [{bar}] {percentage}% | {value}/{total} readings | {eta_formatted}`,
      stream: process.stderr,
      hideCursor: true
    }, cliProgress.Presets.shades_classic)
  const rows = () => Math.max(0, newlines - 1)
  bar?.start(Math.max(expected, 1), 0)
  const counter = new Transform({
    transform (chunk: Buffer, _encoding, callback) {
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) newlines++
      if (bar) {
        // The session's count can lag readings still being written; never let the bar overflow.
        if (rows() > bar.getTotal()) bar.setTotal(rows())
        bar.update(rows())
      }
      callback(null, chunk)
    }
  })
  return { counter, rows, stop: () => bar?.stop() }
}
