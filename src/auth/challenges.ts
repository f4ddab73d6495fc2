import { randomBytes } from 'node:crypto'
import {
  consumeChallenge, deleteStaleChallenges, findChallengeByNonce, findPendingChallenges, findSettledChallenges,
  insertChallengeWithinBound, type StoredChallenge
} from '../db/auth-challenges-repository.js'
import type { Queryable } from '../db/queryable.js'
import { findUserByPublicKeyForms } from '../db/users-repository.js'
import { AppError } from '../errors.js'
import type { Log } from '../logger.js'
import type { User } from '../schemas/users.js'
import { parsePublicKey, publicKeyForms, publicKeyProblem } from '../keys/public-key.js'
import { SIGNATURE_FORMATS, signatureCheck, type SignatureCheck, type SigningKey } from '../keys/signatures.js'

export const SERVICE_NAME = 'motion-ingest'
/**
 * How many of a key's pending challenges a verification without a nonce
 * tries, newest first: plenty for a few devices signing in at once, and few
 * enough to bound the signature checks one request can cost.
 */
export const PENDING_TRIED_WITHOUT_NONCE = 20
/** How many used or expired challenges are tried, so a replay or a late answer is refused with its real reason. */
const SETTLED_TRIED_WITHOUT_NONCE = 5
/** Used and expired challenges are kept this long so a late replay is refused with its real reason. */
export const RETAIN_AFTER_EXPIRY_SECONDS = 3600
const CLEANUP_INTERVAL_MS = 60_000
const BOUND_WARNING_INTERVAL_MS = 60_000

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
const notFound = (message = 'No challenge with this nonce was issued for this public key, or it was cleaned up; request one from POST /auth/challenge') =>
  refused('CHALLENGE_NOT_FOUND', message)
const invalidSignature = () =>
  refused('INVALID_SIGNATURE', 'The signature is not this key\'s signature of a challenge issued for it: wrong key, or the message was altered')

export interface ChallengeServiceOptions {
  ttlSeconds: number
  /** Most unused, unexpired challenges over all keys; beyond it /auth/challenge answers 503. */
  maxPending: number
  log?: Log
}

/**
 * Issues and verifies one-time sign-in challenges. All state is in the
 * database, so a challenge issued by one instance verifies on any other.
 */
export function createChallengeService (db: Queryable, { ttlSeconds, maxPending, log }: ChallengeServiceOptions) {
  let lastCleanup = 0
  let lastBoundWarning = 0

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
   * does not reveal whether a user holds the key. Issuing never removes
   * another challenge: at the bound it refuses instead.
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
    if (!await insertChallengeWithinBound(db, { ...fields, message }, maxPending)) {
      // Once a minute at most: a flood of challenge requests must not become a flood of log lines.
      if (Date.now() - lastBoundWarning >= BOUND_WARNING_INTERVAL_MS) {
        lastBoundWarning = Date.now()
        log?.warn({ maxPending }, 'Sign-in challenges refused: the pending challenges reached the bound.')
      }
      throw new AppError(503, 'TOO_MANY_PENDING_CHALLENGES',
        'Too many sign-in challenges are pending on this service; retry in a minute')
    }
    return { ...fields, scheme: key.scheme, message }
  }

  /** The key's challenge named by the nonce, if the signature is the key's signature of it. */
  async function signedNamedChallenge (publicKey: string, nonce: string, check: SignatureCheck): Promise<StoredChallenge> {
    const challenge = await findChallengeByNonce(db, nonce)
    // A nonce issued for another key is as unknown to this key as one never issued.
    if (!challenge || challenge.publicKey !== publicKey) throw notFound()
    if (!check(challenge.message)) throw invalidSignature()
    return challenge
  }

  /**
   * For clients that do not send the nonce: the one of the key's recent
   * challenges the signature is for. Pending ones come first; used and
   * expired ones only tell a replay or a late answer apart from a bad
   * signature.
   */
  async function signedRecentChallenge (publicKey: string, check: SignatureCheck): Promise<StoredChallenge> {
    const pending = await findPendingChallenges(db, publicKey, PENDING_TRIED_WITHOUT_NONCE)
    const signed = pending.find(challenge => check(challenge.message))
    if (signed) return signed
    const settled = await findSettledChallenges(db, publicKey, SETTLED_TRIED_WITHOUT_NONCE)
    const late = settled.find(challenge => check(challenge.message))
    if (late) return late
    if (pending.length === 0 && settled.length === 0) {
      throw notFound('No challenge was issued for this public key, or it was cleaned up; request one from POST /auth/challenge')
    }
    if (pending.length === PENDING_TRIED_WITHOUT_NONCE) {
      // Anyone can request challenges for a public key: the signed one may be older than those tried.
      throw notFound(`The signed challenge is not among this key's ${PENDING_TRIED_WITHOUT_NONCE} newest pending challenges; send its nonce with the signature`)
    }
    throw invalidSignature()
  }

  /**
   * The user who signed a challenge issued for the key: the one named by
   * `nonce`, or without it one of the key's recent challenges. The signature
   * is checked before the user is looked up, so only the key's holder can
   * learn whether the key is registered.
   */
  async function verify (publicKey: string, signature: string, nonce?: string): Promise<User> {
    const key = signingKey(publicKey)
    const check = signatureCheck(key, signature)
    if (!check) throw new AppError(400, 'MALFORMED_SIGNATURE', `Malformed signature: ${SIGNATURE_FORMATS[key.scheme]}`)
    const signed = nonce === undefined
      ? await signedRecentChallenge(key.canonical, check)
      : await signedNamedChallenge(key.canonical, nonce, check)
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
