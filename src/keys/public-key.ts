import { ED25519_PUBLIC_KEY_BYTES, decodeEd25519Bytes, toNearForm } from './ed25519.js'
import { checksumAddress, hasValidChecksum, isEthereumAddress } from './ethereum.js'

/**
 * A public key as the service understands it. `canonical` is the one stored
 * form: lowercase `0x…` for Ethereum addresses, `ed25519:<base58>` (NEAR's
 * spelling, in which the first beta testers' keys were issued) for Ed25519
 * keys, and the trimmed text for anything else, which only public-key login
 * can use.
 */
export type PublicKey =
  | { scheme: 'ethereum', canonical: string }
  | { scheme: 'ed25519', canonical: string, bytes: Uint8Array }
  | { scheme: 'opaque', canonical: string }

const NEAR_PREFIX = /^ed25519:/i

export function parsePublicKey (input: string): PublicKey {
  const text = input.trim()
  if (isEthereumAddress(text)) return { scheme: 'ethereum', canonical: text.toLowerCase() }
  const bytes = decodeEd25519Bytes(text, ED25519_PUBLIC_KEY_BYTES)
  if (bytes) return { scheme: 'ed25519', canonical: toNearForm(bytes), bytes }
  return { scheme: 'opaque', canonical: text }
}

/**
 * The one stored form of a public key. Keys are compared in this form at
 * login and kept unique in it, so the same key written two ways is one key.
 */
export function normalizePublicKey (publicKey: string): string {
  return parsePublicKey(publicKey).canonical
}

/**
 * Why a key that claims a known form cannot be stored, or undefined when it
 * can. Stored as given, such a key would never verify a signature.
 */
export function publicKeyProblem (publicKey: string): string | undefined {
  const text = publicKey.trim()
  if (isEthereumAddress(text) && !hasValidChecksum(text)) {
    return 'Ethereum address has a wrong EIP-55 checksum (mixed case); check it for a typo or give it in lowercase'
  }
  if (NEAR_PREFIX.test(text) && parsePublicKey(text).scheme !== 'ed25519') {
    return 'ed25519: key must be the base58 encoding of 32 bytes'
  }
  return undefined
}

/**
 * Every spelling under which this key may be stored: the canonical form first,
 * then the text as given, then other common spellings. Users created before
 * keys were normalised keep the form they were given, and are found by it.
 */
export function publicKeyForms (publicKey: string): string[] {
  const parsed = parsePublicKey(publicKey)
  const forms = [parsed.canonical, publicKey.trim()]
  if (parsed.scheme === 'ethereum') forms.push(checksumAddress(parsed.canonical))
  if (parsed.scheme === 'ed25519') {
    const hex = Buffer.from(parsed.bytes).toString('hex')
    forms.push(hex, hex.toUpperCase(), Buffer.from(parsed.bytes).toString('base64'))
  }
  return [...new Set(forms)]
}
