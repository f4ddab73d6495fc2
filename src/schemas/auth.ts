import { z } from 'zod'
import { storableText } from './common.js'
import { user } from './users.js'

export const loginBody = z.object({
  email: z.email().max(320),
  publicKey: storableText().trim().min(1).max(512)
}).strict()

export const tokenResponse = z.object({
  accessToken: z.string().describe('Send as "Authorization: Bearer <accessToken>"'),
  expiresAt: z.string().describe('ISO-8601'),
  user
})

const signingPublicKey = z.string().trim().min(1).max(512)
  .describe('Ethereum address (0x + 40 hex digits) or Ed25519 key (ed25519:<base58>, 64 hex digits, or padded base64)')

export const challengeBody = z.object({ publicKey: signingPublicKey }).strict()

export const challengeResponse = z.object({
  message: z.string().describe('Sign these exact UTF-8 bytes: EIP-191 personal_sign for an Ethereum address, plain Ed25519 for an Ed25519 key'),
  publicKey: z.string().describe('The key in its stored (canonical) form'),
  scheme: z.enum(['ethereum', 'ed25519']),
  nonce: z.string().describe('Send it back with the signature to /auth/verify'),
  issuedAt: z.string().describe('ISO-8601'),
  expiresAt: z.string().describe('ISO-8601; the challenge works once, until then')
})

export const verifyBody = z.object({
  publicKey: signingPublicKey,
  signature: z.string().trim().min(1).max(512)
    .describe('Ethereum: 65 bytes hex (r|s|v). Ed25519: 64 bytes as hex, padded base64 or (ed25519:)base58'),
  nonce: z.string().trim().min(1).max(64).optional()
    .describe('The nonce of the signed challenge, as /auth/challenge returned it. Send it: without it only the key\'s ' +
      '20 newest pending challenges are tried, and anyone can request challenges for a public key')
}).strict()
