import { createPublicKey, verify } from 'node:crypto'
import { base58 } from '@scure/base'

export const ED25519_PUBLIC_KEY_BYTES = 32
export const ED25519_SIGNATURE_BYTES = 64

const NEAR_PREFIX = /^ed25519:/i
const HEX = /^(?:0x)?[0-9a-fA-F]+$/
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$|^[A-Za-z0-9_-]+={0,2}$/
const BASE58 = /^[1-9A-HJ-NP-Za-km-z]+$/

/**
 * Ed25519 bytes from the spellings wallets and tools print: NEAR's
 * `ed25519:<base58>`, hex, or padded base64 (either alphabet). Unpadded
 * base64 is refused because it is indistinguishable from bare base58.
 */
export function decodeEd25519Bytes (text: string, length: number): Uint8Array | undefined {
  let bytes: Uint8Array | undefined
  if (NEAR_PREFIX.test(text)) {
    bytes = decodeBase58(text.replace(NEAR_PREFIX, ''))
  } else if (HEX.test(text) && text.replace(/^0x/, '').length === length * 2) {
    bytes = Buffer.from(text.replace(/^0x/, ''), 'hex')
  } else if (BASE64.test(text) && text.endsWith('=') && text.length === Math.ceil(length / 3) * 4) {
    bytes = Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64')
  }
  return bytes?.length === length ? new Uint8Array(bytes) : undefined
}

function decodeBase58 (text: string): Uint8Array | undefined {
  if (!BASE58.test(text)) return undefined
  try {
    return base58.decode(text)
  } catch {
    return undefined
  }
}

/** The NEAR spelling `ed25519:<base58>`, which this service stores. */
export const toNearForm = (publicKey: Uint8Array) => `ed25519:${base58.encode(publicKey)}`

/**
 * A signature as hex, padded base64, `ed25519:<base58>` or bare base58 (what
 * NEAR tooling prints); undefined when it is none of them.
 */
export function decodeEd25519Signature (text: string): Uint8Array | undefined {
  const bytes = decodeEd25519Bytes(text, ED25519_SIGNATURE_BYTES) ?? decodeBase58(text)
  return bytes?.length === ED25519_SIGNATURE_BYTES ? bytes : undefined
}

/** RFC 8032 verification of a signature over the UTF-8 bytes of the message, by node:crypto. */
export function verifyEd25519 (publicKey: Uint8Array, message: string, signature: Uint8Array): boolean {
  try {
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') }, format: 'jwk' })
    return verify(null, Buffer.from(message, 'utf8'), key, signature)
  } catch {
    // A 32-byte string that is not a point on the curve cannot have signed anything.
    return false
  }
}
