import { Readable } from 'node:stream'
import yazl from 'yazl'
import type { DatasetSink } from './dataset-writer.js'
import { digesting } from './digest.js'

/**
 * Deflate level of the CSV files in a zip: level 1 takes a third of the
 * default's time for files a few percent larger, and the export is bound by
 * CPU. Parquet files are stored: zstd has compressed them already.
 */
export const CSV_DEFLATE_LEVEL = 1

/**
 * A dataset streamed as one zip (ZIP64 past 4 GB, which yazl writes by
 * itself), files added one after another as they are made: the zip's bytes
 * go out while the next file is read from the database.
 */
export class ZipDatasetSink implements DatasetSink {
  private readonly zip = new yazl.ZipFile()
  private readonly mtime: Date

  constructor (private readonly signal: AbortSignal, mtime = new Date()) {
    this.mtime = mtime
  }

  get output (): Readable {
    return this.zip.outputStream as Readable
  }

  async write (path: string, bytes: AsyncIterable<Buffer>, options: { compress: boolean }): Promise<{ sha256: string, bytes: number }> {
    this.signal.throwIfAborted()
    const digest = digesting(bytes)
    const stream = Readable.from(digest.bytes, { objectMode: false })
    await new Promise<void>((resolve, reject) => {
      // The zip stops reading once its reader is gone: the abort is what ends the wait then.
      const abort = () => stream.destroy(this.signal.reason instanceof Error ? this.signal.reason : new Error('Dataset export aborted'))
      this.signal.addEventListener('abort', abort, { once: true })
      stream.once('end', () => {
        this.signal.removeEventListener('abort', abort)
        resolve()
      })
      stream.once('error', err => {
        this.signal.removeEventListener('abort', abort)
        reject(err)
      })
      this.zip.addReadStream(stream, path, {
        mtime: this.mtime,
        compress: options.compress,
        ...(options.compress && { compressionLevel: path.endsWith('.json') ? 6 : CSV_DEFLATE_LEVEL })
      })
    })
    return digest.result()
  }

  /** Writes the central directory: no file may be added after. */
  end (): void {
    this.zip.end()
  }
}
