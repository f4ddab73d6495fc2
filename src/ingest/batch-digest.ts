import { createHash } from 'node:crypto'

/** Bytes kept of a batch's sha256: ample to tell two contents sent under one batch id apart. */
export const BATCH_DIGEST_BYTES = 16

/**
 * The digest of a batch's content, taken from its binary COPY rows: they hold
 * the readings as they are stored (microsecond timestamps, sensor code,
 * doubles), so one batch resent with ISO instead of epoch-millisecond
 * timestamps digests the same. The rows also hold the session id, which a
 * resend shares. sha256 runs on the CPU's SHA instructions: about 20 µs for
 * 375 readings (~50 ns a reading), where validating and encoding them takes
 * 110-140 µs; md5 and blake2b measured twice as slow.
 */
export function batchDigest (rows: Buffer): Buffer {
  return createHash('sha256').update(rows).digest().subarray(0, BATCH_DIGEST_BYTES)
}
