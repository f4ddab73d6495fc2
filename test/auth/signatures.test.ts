import { base58 } from '@scure/base'
import { describe, expect, it } from 'vitest'
import { decodeEd25519Signature, verifyEd25519 } from '../../src/keys/ed25519.js'
import { checksumAddress, recoverPersonalSignAddress, toRecoveredSignature } from '../../src/keys/ethereum.js'
import { parsePublicKey } from '../../src/keys/public-key.js'
import { signatureCheck, type SigningKey } from '../../src/keys/signatures.js'
import { ed25519Signer, ethereumSigner } from './signers.js'

// web3.js documentation, web3.eth.accounts.sign('Some data', privateKey).
const WEB3_ADDRESS = '0x2c7536E3605D9C16a7a3D7b1898e529396a65c23'
const WEB3_SIGNATURE = '0xb91467e570a6466aa9e9876cbcd013baba02900b8979d43fe208a4a4f339f5fd6007e74cd82e037b800186422fc2da167c747ef045e5d18a5f5d4300f8e1a0291c'

// RFC 8032, section 7.1, test 2: a one-byte message 0x72 ('r').
const RFC_PUBLIC = Buffer.from('3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c', 'hex')
const RFC_SIGNATURE = Buffer.from('92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00', 'hex')

const key = (publicKey: string) => parsePublicKey(publicKey) as SigningKey

describe('Ethereum personal_sign', () => {
  it('recovers the address of a published signature', () => {
    const signature = toRecoveredSignature(WEB3_SIGNATURE)
    expect(signature).toBeDefined()
    expect(recoverPersonalSignAddress('Some data', signature!)).toBe(WEB3_ADDRESS.toLowerCase())
    expect(recoverPersonalSignAddress('Some datA', signature!)).not.toBe(WEB3_ADDRESS.toLowerCase())
    expect(checksumAddress(WEB3_ADDRESS.toLowerCase())).toBe(WEB3_ADDRESS)
  })

  it('accepts v as 27/28 or 0/1, with or without 0x, and refuses other shapes', () => {
    const signer = ethereumSigner()
    const signature = signer.sign('hello')
    const v = Number.parseInt(signature.slice(-2), 16)
    const check = (text: string) => signatureCheck(key(signer.publicKey), text)?.('hello')
    expect(check(signature)).toBe(true)
    expect(check(signature.slice(2))).toBe(true)
    expect(check(signature.slice(0, -2) + (v - 27).toString(16).padStart(2, '0'))).toBe(true)
    expect(check(signature.slice(0, -2) + '1d')).toBeUndefined()
    expect(check(signature.slice(0, -4))).toBeUndefined()
    expect(check('0x' + 'zz'.repeat(65))).toBeUndefined()
  })

  it('says no for a different message or a different key', () => {
    const signer = ethereumSigner()
    const other = ethereumSigner()
    expect(signatureCheck(key(signer.publicKey), signer.sign('hello'))?.('hellO')).toBe(false)
    expect(signatureCheck(key(signer.publicKey), other.sign('hello'))?.('hello')).toBe(false)
  })
})

describe('Ed25519', () => {
  it('verifies the RFC 8032 vector and refuses it for another message', () => {
    expect(verifyEd25519(RFC_PUBLIC, 'r', RFC_SIGNATURE)).toBe(true)
    expect(verifyEd25519(RFC_PUBLIC, 's', RFC_SIGNATURE)).toBe(false)
  })

  it('reads a signature as hex, padded base64, or base58 with or without ed25519:', () => {
    for (const text of [RFC_SIGNATURE.toString('hex'), RFC_SIGNATURE.toString('base64'), base58.encode(RFC_SIGNATURE), `ed25519:${base58.encode(RFC_SIGNATURE)}`]) {
      expect(Buffer.from(decodeEd25519Signature(text)!)).toEqual(RFC_SIGNATURE)
    }
    expect(decodeEd25519Signature(RFC_SIGNATURE.toString('hex').slice(2))).toBeUndefined()
    expect(decodeEd25519Signature('not a signature')).toBeUndefined()
  })

  it('checks signatures for keys registered in any form', () => {
    const signer = ed25519Signer()
    const signature = signer.sign('hello')
    for (const form of [signer.near, signer.hex, signer.base64]) {
      expect(signatureCheck(key(form), signature)?.('hello')).toBe(true)
      expect(signatureCheck(key(form), signature)?.('hellO')).toBe(false)
    }
    expect(signatureCheck(key(ed25519Signer().near), signature)?.('hello')).toBe(false)
  })

  it('says no, without throwing, for 32 bytes that are not a curve point', () => {
    // y = 2 has no x on edwards25519, so these bytes are not a valid public key.
    const notAPoint = Buffer.alloc(32)
    notAPoint[0] = 2
    expect(verifyEd25519(notAPoint, 'r', RFC_SIGNATURE)).toBe(false)
  })
})
