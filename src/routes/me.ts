import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { findUserById } from '../db/users-repository.js'
import { unauthorized } from '../errors.js'
import { errorResponse } from '../schemas/common.js'
import { user } from '../schemas/users.js'

const meRoutes: FastifyPluginAsyncZod = async (fastify) => {
  fastify.get('/me', {
    onRequest: fastify.authenticate,
    schema: { tags: ['users'], summary: 'The user the token belongs to', response: { 200: user, 401: errorResponse } }
  }, async (request) => {
    const found = await findUserById(fastify.db, request.auth!.userId)
    if (!found) throw unauthorized()
    return found
  })
}

export default meRoutes
