import { createHash } from 'node:crypto'

/** Passes bytes on while taking their sha256 and count; `result()` once they have all gone by. */
export function digesting (bytes: AsyncIterable<Buffer>): { bytes: AsyncGenerator<Buffer>, result: () => { sha256: string, bytes: number } } {
  const hash = createHash('sha256')
  let count = 0
  return {
    bytes: (async function * () {
      for await (const piece of bytes) {
        hash.update(piece)
        count += piece.length
        yield piece
      }
    })(),
    result: () => ({ sha256: hash.digest('hex'), bytes: count })
  }
}
