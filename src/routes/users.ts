import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { deleteUser, findUserByPublicKeyForms, insertUser, listUsers } from '../db/users-repository.js'
import { conflict, notFound } from '../errors.js'
import { uniqueViolation } from '../db/errors.js'
import { normalizePublicKey, publicKeyForms } from '../keys/public-key.js'
import { errorResponse, idParam, pagingQuery, storableText } from '../schemas/common.js'
import { createUserBody, deleteUserResult, user, userPage } from '../schemas/users.js'

const usersRoutes: FastifyPluginAsyncZod = async (fastify) => {
  const adminOnly = fastify.requireRole('ADMIN')

  fastify.post('/users', {
    onRequest: adminOnly,
    schema: {
      tags: ['users'],
      summary: 'Create a user (admin)',
      body: createUserBody,
      response: { 201: user, 400: errorResponse, 409: errorResponse }
    }
  }, async (request, reply) => {
    try {
      const created = await insertUser(fastify.db, { ...request.body, publicKey: normalizePublicKey(request.body.publicKey) })
      return reply.code(201).send(created)
    } catch (err) {
      const constraint = uniqueViolation(err)
      if (constraint === 'users_email_key') throw conflict('A user with this email already exists')
      if (constraint === 'users_public_key_key') throw conflict('A user with this public key already exists')
      throw err
    }
  })

  fastify.get('/users', {
    onRequest: adminOnly,
    schema: {
      tags: ['users'],
      summary: 'A page of users, oldest first (admin)',
      querystring: pagingQuery(50, 500),
      response: { 200: userPage }
    }
  }, async (request) => {
    const { take, skip } = request.query
    return { ...await listUsers(fastify.db, take, skip), take, skip }
  })

  fastify.get('/users/by-public-key/:publicKey', {
    onRequest: adminOnly,
    schema: {
      tags: ['users'],
      summary: 'The user holding a public key (admin)',
      params: z.object({ publicKey: storableText().min(1).max(512) }),
      response: { 200: user, 404: errorResponse }
    }
  }, async (request) => {
    const found = await findUserByPublicKeyForms(fastify.db, publicKeyForms(request.params.publicKey))
    if (!found) throw notFound('No user has this public key')
    return found
  })

  fastify.delete('/users/:id', {
    onRequest: adminOnly,
    schema: {
      tags: ['users'],
      summary: 'Delete a user with their sessions and readings (admin)',
      params: idParam,
      response: { 200: deleteUserResult, 404: errorResponse }
    }
  }, async (request) => {
    const deleted = await deleteUser(fastify.db, request.params.id)
    if (!deleted) throw notFound(`User ${request.params.id} does not exist`)
    // Their tokens are gone; sockets they opened earlier must not keep recording.
    fastify.recording.sockets.disconnectUser(request.params.id, 'the user was deleted')
    return { deleted }
  })
}

export default usersRoutes
