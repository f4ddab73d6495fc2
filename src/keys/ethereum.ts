import { secp256k1 } from '@noble/curves/secp256k1.js'
import { keccak_256 as keccak256 } from '@noble/hashes/sha3.js'
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js'

const ADDRESS = /^0x[0-9a-fA-F]{40}$/
const SIGNATURE = /^(?:0x)?[0-9a-fA-F]{130}$/
const encoder = new TextEncoder()

export const isEthereumAddress = (text: string) => ADDRESS.test(text)

/** EIP-55 mixed-case checksum form of an address given in any case. */
export function checksumAddress (address: string): string {
  const lower = address.toLowerCase().slice(2)
  const hash = bytesToHex(keccak256(encoder.encode(lower)))
  let out = '0x'
  for (let i = 0; i < lower.length; i++) {
    out += Number.parseInt(hash[i] as string, 16) >= 8 ? (lower[i] as string).toUpperCase() : lower[i]
  }
  return out
}

/**
 * An all-lowercase or all-uppercase address carries no checksum; a mixed-case
 * one does, and a wrong checksum almost always means a mistyped address.
 */
export function hasValidChecksum (address: string): boolean {
  const body = address.slice(2)
  if (body === body.toLowerCase() || body === body.toUpperCase()) return true
  return checksumAddress(address) === address
}

/** keccak256("\x19Ethereum Signed Message:\n" + byteLength + message): what personal_sign signs (EIP-191 version 0x45). */
export function personalMessageHash (message: string): Uint8Array {
  const body = encoder.encode(message)
  const prefix = encoder.encode(`\x19Ethereum Signed Message:\n${body.length}`)
  const data = new Uint8Array(prefix.length + body.length)
  data.set(prefix)
  data.set(body, prefix.length)
  return keccak256(data)
}

/** The lowercase address of an uncompressed secp256k1 public key: the last 20 bytes of keccak256(x || y). */
export function addressOfPublicKey (publicKey: Uint8Array): string {
  const point = secp256k1.Point.fromBytes(publicKey).toBytes(false)
  return '0x' + bytesToHex(keccak256(point.subarray(1)).subarray(12))
}

/**
 * Turns a 65-byte Ethereum signature (r|s|v, v = 27/28 or 0/1) into noble's
 * recovered layout (recid|r|s). Undefined when it is not such a signature.
 */
export function toRecoveredSignature (signature: string): Uint8Array | undefined {
  if (!SIGNATURE.test(signature)) return undefined
  const bytes = hexToBytes(signature.replace(/^0x/, ''))
  const v = bytes[64] as number
  const recovery = v >= 27 ? v - 27 : v
  if (recovery !== 0 && recovery !== 1) return undefined
  const recovered = new Uint8Array(65)
  recovered[0] = recovery
  recovered.set(bytes.subarray(0, 64), 1)
  return recovered
}

/**
 * The lowercase address that produced an EIP-191 personal_sign signature over
 * the message, or undefined when no key can have produced it. Any signature
 * recovers to some address, so the caller must compare it with the expected one.
 */
export function recoverPersonalSignAddress (message: string, signature: Uint8Array): string | undefined {
  try {
    const publicKey = secp256k1.recoverPublicKey(signature, personalMessageHash(message), { prehash: false })
    return addressOfPublicKey(publicKey)
  } catch {
    return undefined
  }
}
