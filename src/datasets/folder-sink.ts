import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, rename, rm, stat } from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createHash } from 'node:crypto'
import type { DatasetSink } from './dataset-writer.js'
import { digesting } from './digest.js'
import type { ManifestFile } from './manifest.js'

/**
 * A dataset written into a folder: each file beside its final name
 * (`.part`) and renamed once whole, so a file under its name is always
 * complete; a resumed export keeps a file whose size and sha256 are the ones
 * the earlier run recorded.
 */
export class FolderDatasetSink implements DatasetSink {
  constructor (readonly root: string) {}

  async write (relative: string, bytes: AsyncIterable<Buffer>): Promise<{ sha256: string, bytes: number }> {
    const target = this.resolve(relative)
    await mkdir(path.dirname(target), { recursive: true })
    const partial = `${target}.part`
    const digest = digesting(bytes)
    try {
      await pipeline(Readable.from(digest.bytes, { objectMode: false }), createWriteStream(partial))
      await rename(partial, target)
    } catch (err) {
      await rm(partial, { force: true })
      throw err
    }
    return digest.result()
  }

  async holds (file: ManifestFile): Promise<boolean> {
    const target = this.resolve(file.path)
    const info = await stat(target).catch(() => undefined)
    if (!info?.isFile() || info.size !== file.bytes) return false
    const hash = createHash('sha256')
    for await (const piece of createReadStream(target)) hash.update(piece as Buffer)
    return hash.digest('hex') === file.sha256
  }

  private resolve (relative: string): string {
    const target = path.resolve(this.root, ...relative.split('/'))
    if (!target.startsWith(path.resolve(this.root) + path.sep)) throw new Error(`${relative} lies outside the dataset folder`)
    return target
  }
}
