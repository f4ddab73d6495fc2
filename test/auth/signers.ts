import { generateKeyPairSync, sign } from 'node:crypto'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { keccak_256 as keccak256 } from '@noble/hashes/sha3.js'
import { base58 } from '@scure/base'

/**
 * Wallet-side signing for the tests, written from the specifications rather
 * than with the service's own helpers, so a bug there cannot hide itself.
 */
export interface TestSigner {
  /** The public key as the user would register it. */
  publicKey: string
  sign: (message: string) => string
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex')

export function ethereumAddressOf (secretKey: Uint8Array): string {
  const uncompressed = secp256k1.getPublicKey(secretKey, false)
  return '0x' + hex(keccak256(uncompressed.subarray(1)).subarray(12))
}

/** EIP-191 personal_sign as wallets do it: r|s|v with v = 27 or 28, 0x-prefixed hex. */
export function personalSign (message: string, secretKey: Uint8Array): string {
  const body = Buffer.from(message, 'utf8')
  const digest = keccak256(Buffer.concat([Buffer.from(`\x19Ethereum Signed Message:\n${body.length}`, 'utf8'), body]))
  const recovered = secp256k1.sign(digest, secretKey, { prehash: false, format: 'recovered' })
  // noble v2 lays a recovered signature out as recid|r|s; Ethereum wants r|s|v.
  return '0x' + hex(recovered.subarray(1)) + (27 + (recovered[0] as number)).toString(16)
}

export function ethereumSigner (): TestSigner & { secretKey: Uint8Array } {
  const secretKey = secp256k1.utils.randomSecretKey()
  return { secretKey, publicKey: ethereumAddressOf(secretKey), sign: message => personalSign(message, secretKey) }
}

export interface Ed25519TestSigner extends TestSigner {
  raw: Buffer
  hex: string
  base64: string
  near: string
}

/** An Ed25519 key registered in NEAR form, signing raw UTF-8 bytes and answering with hex. */
export function ed25519Signer (): Ed25519TestSigner {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519')
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url')
  const near = `ed25519:${base58.encode(raw)}`
  return {
    raw,
    hex: raw.toString('hex'),
    base64: raw.toString('base64'),
    near,
    publicKey: near,
    sign: message => sign(null, Buffer.from(message, 'utf8'), privateKey).toString('hex')
  }
}
