import { base58 } from '@scure/base'
import { describe, expect, it } from 'vitest'
import { normalizePublicKey, parsePublicKey, publicKeyForms, publicKeyProblem } from '../../src/keys/public-key.js'
import { ed25519Signer } from './signers.js'

// RFC 8032, section 7.1, test 1.
const RFC_PUBLIC_HEX = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a'
const RFC_PUBLIC = Buffer.from(RFC_PUBLIC_HEX, 'hex')
const RFC_NEAR = `ed25519:${base58.encode(RFC_PUBLIC)}`

// EIP-55's own examples.
const CHECKSUMMED = ['0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed', '0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359', '0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb']

describe('normalizePublicKey', () => {
  it('stores the hex, base64 and NEAR forms of one Ed25519 key as one ed25519:<base58> string', () => {
    const forms = [
      RFC_PUBLIC_HEX,
      RFC_PUBLIC_HEX.toUpperCase(),
      `0x${RFC_PUBLIC_HEX}`,
      RFC_PUBLIC.toString('base64'),
      RFC_PUBLIC.toString('base64url') + '=',
      RFC_NEAR,
      `  ${RFC_NEAR}\n`
    ]
    expect(new Set(forms.map(normalizePublicKey))).toEqual(new Set([RFC_NEAR]))
    expect(RFC_NEAR).toMatch(/^ed25519:[1-9A-HJ-NP-Za-km-z]{43,44}$/)
  })

  it('does so for freshly generated keys too, whose base58 may start with 1s', () => {
    for (let i = 0; i < 50; i++) {
      const key = ed25519Signer()
      expect(normalizePublicKey(key.hex)).toBe(key.near)
      expect(normalizePublicKey(key.base64)).toBe(key.near)
      expect(normalizePublicKey(key.near)).toBe(key.near)
    }
    const leadingZero = Buffer.alloc(32, 7)
    leadingZero[0] = 0
    expect(normalizePublicKey(leadingZero.toString('hex'))).toBe(`ed25519:1${base58.encode(leadingZero.subarray(1))}`)
  })

  it('lowercases Ethereum addresses, checksummed or not', () => {
    for (const address of CHECKSUMMED) {
      expect(normalizePublicKey(address)).toBe(address.toLowerCase())
      expect(normalizePublicKey(address.toLowerCase())).toBe(address.toLowerCase())
      expect(normalizePublicKey(` ${address.toUpperCase().replace('0X', '0x')} `)).toBe(address.toLowerCase())
    }
  })

  it('keeps other keys as given, trimmed', () => {
    for (const key of ['pk-legacy-1', '0xAbC123', 'A'.repeat(43), 'ed25519:tooShort', RFC_PUBLIC_HEX.slice(2)]) {
      expect(normalizePublicKey(`  ${key} `)).toBe(key)
      expect(parsePublicKey(key).scheme).toBe('opaque')
    }
  })
})

describe('publicKeyProblem', () => {
  it('accepts valid checksums, all-lowercase and all-uppercase addresses', () => {
    for (const address of CHECKSUMMED) {
      expect(publicKeyProblem(address)).toBeUndefined()
      expect(publicKeyProblem(address.toLowerCase())).toBeUndefined()
    }
  })

  it('refuses a mixed-case address whose checksum is wrong', () => {
    const typo = CHECKSUMMED[0]!.replace('aAeb', 'AAeb')
    expect(publicKeyProblem(typo)).toMatch(/checksum/)
  })

  it('refuses an ed25519: key that is not 32 bytes of base58', () => {
    expect(publicKeyProblem('ed25519:0OIl')).toMatch(/32 bytes/)
    expect(publicKeyProblem(`ed25519:${base58.encode(Buffer.alloc(31, 1))}`)).toMatch(/32 bytes/)
    expect(publicKeyProblem(RFC_NEAR)).toBeUndefined()
    expect(publicKeyProblem('pk-legacy-1')).toBeUndefined()
  })
})

describe('publicKeyForms', () => {
  it('lists the canonical form first, then the text as given and other spellings', () => {
    expect(publicKeyForms(RFC_PUBLIC.toString('base64'))).toEqual([RFC_NEAR, RFC_PUBLIC.toString('base64'), RFC_PUBLIC_HEX, RFC_PUBLIC_HEX.toUpperCase()])
    expect(publicKeyForms(CHECKSUMMED[1]!.toLowerCase())).toEqual([CHECKSUMMED[1]!.toLowerCase(), CHECKSUMMED[1]])
    expect(publicKeyForms(' legacy ')).toEqual(['legacy'])
  })
})
