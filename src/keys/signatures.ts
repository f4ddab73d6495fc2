import { decodeEd25519Signature, verifyEd25519 } from './ed25519.js'
import { recoverPersonalSignAddress, toRecoveredSignature } from './ethereum.js'
import type { PublicKey } from './public-key.js'

/** Tells whether the decoded signature was made by the key over a message. */
export type SignatureCheck = (message: string) => boolean

export type SigningKey = Exclude<PublicKey, { scheme: 'opaque' }>

export const SIGNATURE_FORMATS: Record<SigningKey['scheme'], string> = {
  ethereum: 'an Ethereum personal_sign signature is 65 bytes as 130 hex digits (r|s|v, 0x optional)',
  ed25519: 'an Ed25519 signature is 64 bytes as hex, padded base64, or (ed25519:)base58'
}

/**
 * Decodes the signature once for the key's scheme and returns a check to run
 * against candidate messages, or undefined when the signature is malformed.
 */
export function signatureCheck (key: SigningKey, signature: string): SignatureCheck | undefined {
  const text = signature.trim()
  if (key.scheme === 'ethereum') {
    const recovered = toRecoveredSignature(text)
    // EIP-191 recovery yields an address for any well-formed signature; only equality with the key proves anything.
    return recovered && (message => recoverPersonalSignAddress(message, recovered) === key.canonical)
  }
  const bytes = decodeEd25519Signature(text)
  return bytes && (message => verifyEd25519(key.bytes, message, bytes))
}
