import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { timingSafeEqual } from 'node:crypto'
import { issueAccessToken } from '../db/access-tokens-repository.js'
import { findUserByEmail } from '../db/users-repository.js'
import { AppError, unauthorized } from '../errors.js'
import { normalizePublicKey } from '../auth/public-key.js'
import { loginBody, tokenResponse } from '../schemas/auth.js'
import { errorResponse } from '../schemas/common.js'

export interface AuthRoutesOptions {
  accessTokenTtlSeconds: number
  allowPublicKeyLogin: boolean
}

function sameText (a: string, b: string): boolean {
  const left = Buffer.from(a)
  const right = Buffer.from(b)
  return left.length === right.length && timingSafeEqual(left, right)
}

const authRoutes: FastifyPluginAsyncZod<AuthRoutesOptions> = async (fastify, options) => {
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
    if (!user || !sameText(user.publicKey, normalizePublicKey(request.body.publicKey))) {
      throw unauthorized('Unknown email or wrong public key')
    }
    const token = await issueAccessToken(fastify.db, user.id, options.accessTokenTtlSeconds)
    return { accessToken: token.accessToken, expiresAt: token.expiresAt.toISOString(), user }
  })
}

export default authRoutes
