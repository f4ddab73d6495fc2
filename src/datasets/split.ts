import { createHash } from 'node:crypto'

export const SPLIT_NAMES = ['train', 'validation', 'test'] as const
export type SplitName = typeof SPLIT_NAMES[number]

export interface SplitSpec {
  /** Shares of train, validation and test; they add up to 1. */
  fractions: [number, number, number]
  seed: string
}

/** Parses `0.8,0.1,0.1`: three shares, none negative, adding up to 1. */
export function parseSplitFractions (text: string): [number, number, number] | undefined {
  const parts = text.split(',').map(part => part.trim())
  if (parts.length !== 3 || parts.some(part => !/^\d+(\.\d+)?$/.test(part))) return undefined
  const fractions = parts.map(Number) as [number, number, number]
  const sum = fractions[0] + fractions[1] + fractions[2]
  return Math.abs(sum - 1) < 1e-9 ? fractions : undefined
}

/**
 * The side a user's sessions all go to. Each user is placed on its own, by
 * a number in [0, 1) drawn from sha256(seed, user id): the same seed puts a
 * user on the same side in every export, whatever other users an export
 * holds, so a user tested on is never trained on in a later, larger export.
 * The shares hold on average over many users; the manifest says how many
 * each side got.
 */
export function splitOfUser (userId: number, spec: SplitSpec): SplitName {
  const digest = createHash('sha256').update(`${spec.seed}\u0000${userId}`).digest()
  // 52 bits: a double in [0, 1) with every bit drawn.
  const draw = (digest.readUInt32BE(0) * 2 ** 20 + (digest.readUInt32BE(4) >>> 12)) / 2 ** 52
  const [train, validation] = spec.fractions
  if (draw < train) return 'train'
  return draw < train + validation ? 'validation' : 'test'
}
