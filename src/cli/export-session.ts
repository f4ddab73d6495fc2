import { rename, rm } from 'node:fs/promises'
import { createWriteStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import type { Log } from '../logger.js'
import type { Pool } from '../db/pool.js'
import { openReadingsCsv } from '../db/readings/readings-export.js'
import type { Session } from '../schemas/sessions.js'
import { exportProgress } from './export-progress.js'

export interface ExportTarget {
  /** A file path, or undefined for stdout. */
  file?: string
  /** Draw a progress bar on stderr. */
  progress: boolean
  logger: Log
}

/**
 * Writes one session as CSV to a file or stdout and returns the number of
 * readings written. A file is written beside its final name and renamed at
 * the end, so a failed export never leaves a truncated file behind.
 */
export async function exportSession (pool: Pool, session: Session, target: ExportTarget): Promise<number> {
  const progress = exportProgress(session.totalSensorReadingsWritten, target.progress ? `session ${session.id}` : undefined)
  try {
    const csv = await openReadingsCsv(pool, session.id, { logger: target.logger })
    if (target.file === undefined) {
      try {
        await pipeline(csv, progress.counter, process.stdout, { end: false })
      } catch (err) {
        // The reader went away (`| head`): like other Unix tools, stop quietly.
        if ((err as { code?: string }).code !== 'EPIPE') throw err
      }
      return progress.rows()
    }
    const partial = `${target.file}.part`
    try {
      await pipeline(csv, progress.counter, createWriteStream(partial))
      await rename(partial, target.file)
    } catch (err) {
      await rm(partial, { force: true })
      throw err
    }
    return progress.rows()
  } finally {
    progress.stop()
  }
}
