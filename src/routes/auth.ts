import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { sameSecret } from '../credentials.js'
import { createChallengeService } from '../auth/challenges.js'
import { publicKeyForms } from '../keys/public-key.js'
import { issueAccessToken } from '../db/access-tokens-repository.js'
import { findUserByEmail } from '../db/users-repository.js'
import { AppError, unauthorized } from '../errors.js'
import { challengeBody, challengeResponse, loginBody, tokenResponse, verifyBody } from '../schemas/auth.js'
import { errorResponse } from '../schemas/common.js'
import type { User } from '../schemas/users.js'

export interface AuthRoutesOptions {
  accessTokenTtlSeconds: number
  allowPublicKeyLogin: boolean
  challengeTtlSeconds: number
  maxPendingChallenges: number
}

const authRoutes: FastifyPluginAsyncZod<AuthRoutesOptions> = async (fastify, options) => {
  const challenges = createChallengeService(fastify.db, {
    ttlSeconds: options.challengeTtlSeconds,
    maxPending: options.maxPendingChallenges,
    log: fastify.log.child({ component: 'auth-challenges' })
  })

  async function tokenFor (user: User) {
    const token = await issueAccessToken(fastify.db, user.id, options.accessTokenTtlSeconds)
    return { accessToken: token.accessToken, expiresAt: token.expiresAt.toISOString(), user }
  }

  fastify.post('/auth/login', {
    schema: {
      tags: ['auth'],
      summary: 'Log in with email and public key (the original scheme)',
      body: loginBody,
      response: { 200: tokenResponse, 401: errorResponse, 403: errorResponse }
    }
  }, async (request) => {
    if (!options.allowPublicKeyLogin) {
      throw new AppError(403, 'PUBLIC_KEY_LOGIN_DISABLED', 'Public-key login is switched off; use /auth/challenge and /auth/verify')
    }
    const user = await findUserByEmail(fastify.db, request.body.email)
    // Any spelling of the stored key matches, so users stored before keys were normalised still get in.
    if (!user || !publicKeyForms(request.body.publicKey).some(form => sameSecret(user.publicKey, form))) {
      throw unauthorized('Unknown email or wrong public key')
    }
    return tokenFor(user)
  })

  fastify.post('/auth/challenge', {
    schema: {
      tags: ['auth'],
      summary: 'A one-time message to sign with the key\'s private key',
      description: 'Answers the same for registered and unknown keys; /auth/verify decides. ' +
        'Issuing never invalidates another pending challenge; when too many are pending over all keys it answers 503 TOO_MANY_PENDING_CHALLENGES.',
      body: challengeBody,
      response: { 200: challengeResponse, 400: errorResponse, 503: errorResponse }
    }
  }, async (request) => {
    const challenge = await challenges.issue(request.body.publicKey)
    return { ...challenge, issuedAt: challenge.issuedAt.toISOString(), expiresAt: challenge.expiresAt.toISOString() }
  })

  fastify.post('/auth/verify', {
    schema: {
      tags: ['auth'],
      summary: 'Exchange a signed challenge for an access token',
      description: 'Send the challenge\'s nonce with the signature: the challenge is then found by it. ' +
        'Without it, the key\'s 20 newest pending challenges are tried.',
      body: verifyBody,
      response: { 200: tokenResponse, 400: errorResponse, 401: errorResponse }
    }
  }, async (request) => {
    const user = await challenges.verify(request.body.publicKey, request.body.signature, request.body.nonce)
    request.log.info({ userId: user.id }, 'Signed in with a signature.')
    return tokenFor(user)
  })
}

export default authRoutes
