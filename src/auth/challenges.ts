import { randomBytes } from 'node:crypto'
import { consumeChallenge, deleteStaleChallenges, findRecentChallenges, insertChallenge } from '../db/auth-challenges-repository.js'
import type { Queryable } from '../db/queryable.js'
import { findUserByPublicKeyForms } from '../db/users-repository.js'
import { AppError } from '../errors.js'
import type { Log } from '../logger.js'
import type { User } from '../schemas/users.js'
import { parsePublicKey, publicKeyForms, publicKeyProblem } from './public-key.js'
import { SIGNATURE_FORMATS, signatureCheck, type SigningKey } from './signatures.js'

export const SERVICE_NAME = 'motion-ingest'
/** How many recent challenges per key are kept and tried; a few devices signing in at once fit. */
export const CHALLENGES_PER_KEY = 5
/** Used and expired challenges are kept this long so a late replay is refused with its real reason. */
export const RETAIN_AFTER_EXPIRY_SECONDS = 3600
const CLEANUP_INTERVAL_MS = 60_000

export interface ChallengeFields {
  publicKey: string
  nonce: string
  issuedAt: Date
  expiresAt: Date
}

export interface IssuedChallenge extends ChallengeFields {
  scheme: SigningKey['scheme']
  message: string
}

/**
 * The text the client signs, byte for byte. Field names follow Sign-In with
 * Ethereum so wallets show something familiar, but the first line is
 * deliberately not SIWE's, since the message lacks SIWE's domain and chain id.
 */
export function challengeMessage ({ publicKey, nonce, issuedAt, expiresAt }: ChallengeFields): string {
  return [
    `${SERVICE_NAME} wants you to sign in with your key:`,
    publicKey,
    '',
    `Signing proves you hold this key. It works once, for ${SERVICE_NAME} only.`,
    '',
    `Nonce: ${nonce}`,
    `Issued At: ${issuedAt.toISOString()}`,
    `Expiration Time: ${expiresAt.toISOString()}`
  ].join('\n')
}

function signingKey (publicKey: string): SigningKey {
  const problem = publicKeyProblem(publicKey)
  if (problem) throw new AppError(400, 'INVALID_PUBLIC_KEY', problem)
  const key = parsePublicKey(publicKey)
  if (key.scheme === 'opaque') {
    throw new AppError(400, 'UNSUPPORTED_PUBLIC_KEY',
      'Signature sign-in needs an Ethereum address (0x + 40 hex digits) or an Ed25519 key (ed25519:<base58>, 64 hex digits, or padded base64); other keys can only use /auth/login')
  }
  return key
}

const refused = (code: string, message: string) => new AppError(401, code, message)

export interface ChallengeServiceOptions {
  ttlSeconds: number
  log?: Log
}

/**
 * Issues and verifies one-time sign-in challenges. All state is in the
 * database, so a challenge issued by one instance verifies on any other.
 */
export function createChallengeService (db: Queryable, { ttlSeconds, log }: ChallengeServiceOptions) {
  let lastCleanup = 0

  async function cleanUpNowAndThen (): Promise<void> {
    if (Date.now() - lastCleanup < CLEANUP_INTERVAL_MS) return
    lastCleanup = Date.now()
    try {
      const deleted = await deleteStaleChallenges(db, RETAIN_AFTER_EXPIRY_SECONDS)
      if (deleted) log?.debug({ deleted }, 'Stale sign-in challenges deleted.')
    } catch (err) {
      // Cleanup is housekeeping: failing it must not fail a sign-in.
      log?.warn({ err }, 'Deleting stale sign-in challenges failed.')
    }
  }

  /**
   * A challenge for any well-formed key, registered or not, so the answer
   * does not reveal whether a user holds the key.
   */
  async function issue (publicKey: string): Promise<IssuedChallenge> {
    const key = signingKey(publicKey)
    await cleanUpNowAndThen()
    const issuedAt = new Date()
    const fields = {
      publicKey: key.canonical,
      nonce: randomBytes(16).toString('hex'),
      issuedAt,
      expiresAt: new Date(issuedAt.getTime() + ttlSeconds * 1000)
    }
    const message = challengeMessage(fields)
    await insertChallenge(db, { ...fields, message }, CHALLENGES_PER_KEY)
    return { ...fields, scheme: key.scheme, message }
  }

  /**
   * The user who signed one of the key's recent challenges. The signature is
   * checked before the user is looked up, so only the key's holder can learn
   * whether the key is registered.
   */
  async function verify (publicKey: string, signature: string): Promise<User> {
    const key = signingKey(publicKey)
    const check = signatureCheck(key, signature)
    if (!check) throw new AppError(400, 'MALFORMED_SIGNATURE', `Malformed signature: ${SIGNATURE_FORMATS[key.scheme]}`)
    const challenges = await findRecentChallenges(db, key.canonical, CHALLENGES_PER_KEY)
    if (challenges.length === 0) {
      throw refused('CHALLENGE_NOT_FOUND', 'No challenge was issued for this public key, or it was cleaned up; request one from POST /auth/challenge')
    }
    const signed = challenges.find(challenge => check(challenge.message))
    if (!signed) {
      throw refused('INVALID_SIGNATURE', 'The signature is not this key\'s signature of a challenge issued for it: wrong key, or the message was altered')
    }
    if (signed.consumed) throw refused('CHALLENGE_ALREADY_USED', 'This challenge was already used; request a new one from POST /auth/challenge')
    if (signed.expired) throw refused('CHALLENGE_EXPIRED', `This challenge expired at ${signed.expiresAt.toISOString()}; request a new one from POST /auth/challenge`)
    if (!await consumeChallenge(db, signed.nonce)) {
      throw refused('CHALLENGE_ALREADY_USED', 'This challenge was used by a concurrent request or expired just now; request a new one')
    }
    const user = await findUserByPublicKeyForms(db, publicKeyForms(publicKey))
    if (!user) throw refused('UNKNOWN_PUBLIC_KEY', 'The signature is valid, but no user is registered with this public key')
    return user
  }

  return { issue, verify }
}

export type ChallengeService = ReturnType<typeof createChallengeService>
