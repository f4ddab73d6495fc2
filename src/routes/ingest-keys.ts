import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { listIngestKeys, mintIngestKey, revokeIngestKey, type IngestKey } from '../db/ingest-keys-repository.js'
import { findUserById } from '../db/users-repository.js'
import { AppError, notFound } from '../errors.js'
import { errorResponse, idParam } from '../schemas/common.js'
import {
  createIngestKeyBody, ingestKeyIdParam, ingestKeyList, MAX_INGEST_KEYS_PER_USER, mintedIngestKey,
  revokedIngestKey, sensorLoggerPushPath, userIngestKeyParams, type IngestKeyView
} from '../schemas/ingest-keys.js'

const view = (key: IngestKey): IngestKeyView => ({
  id: key.id,
  label: key.label,
  createdAt: key.createdAt.toISOString(),
  lastUsedAt: key.lastUsedAt?.toISOString() ?? null
})

/**
 * Ingest keys: the secrets push clients (Sensor Logger) record with. A
 * beta tester manages their own under /me, an admin anyone's under
 * /users/:id. A key is shown once, when minted.
 */
const ingestKeysRoutes: FastifyPluginAsyncZod = async (fastify) => {
  const betaTestersOnly = fastify.requireRole('BETATESTER')
  const adminOnly = fastify.requireRole('ADMIN')

  async function mint (userId: number, label: string | undefined) {
    const result = await mintIngestKey(fastify.db, userId, label ?? null, MAX_INGEST_KEYS_PER_USER)
    switch (result.status) {
      case 'minted': {
        const { id, label, createdAt, key } = result.key
        return { id, label, createdAt: createdAt.toISOString(), key, pushUrl: sensorLoggerPushPath(key) }
      }
      case 'user_not_found':
        throw notFound(`User ${userId} does not exist`)
      case 'not_a_recorder':
        throw new AppError(409, 'NOT_A_RECORDER', 'Only beta testers record; an ingest key for this user could never be used')
      case 'limit_reached':
        throw new AppError(409, 'INGEST_KEY_LIMIT', `At most ${result.limit} ingest keys per user; revoke one first`)
    }
  }

  async function revoke (userId: number, keyId: number) {
    if (!await revokeIngestKey(fastify.db, userId, keyId)) throw notFound(`Ingest key ${keyId} does not exist`)
    return { id: keyId, revoked: true as const }
  }

  const mintResponses = { 201: mintedIngestKey, 400: errorResponse, 401: errorResponse, 403: errorResponse, 404: errorResponse, 409: errorResponse }
  // POST with no body at all (curl -X POST) mints a key without a label.
  const optionalBody = createIngestKeyBody.nullish()

  fastify.post('/me/ingest-keys', {
    onRequest: betaTestersOnly,
    schema: { tags: ['ingest keys'], summary: 'Mint an ingest key for Sensor Logger\'s HTTP push; the key is shown this once', body: optionalBody, response: mintResponses }
  }, async (request, reply) => reply.code(201).send(await mint(request.auth!.userId, request.body?.label)))

  fastify.get('/me/ingest-keys', {
    onRequest: betaTestersOnly,
    schema: { tags: ['ingest keys'], summary: 'Your ingest keys, without their secrets', response: { 200: ingestKeyList, 401: errorResponse, 403: errorResponse } }
  }, async (request) => ({ items: (await listIngestKeys(fastify.db, request.auth!.userId)).map(view) }))

  fastify.delete('/me/ingest-keys/:keyId', {
    onRequest: betaTestersOnly,
    schema: { tags: ['ingest keys'], summary: 'Revoke one of your ingest keys', params: ingestKeyIdParam, response: { 200: revokedIngestKey, 404: errorResponse } }
  }, async (request) => revoke(request.auth!.userId, request.params.keyId))

  fastify.post('/users/:id/ingest-keys', {
    onRequest: adminOnly,
    schema: { tags: ['ingest keys'], summary: 'Mint an ingest key for a beta tester (admin); the key is shown this once', params: idParam, body: optionalBody, response: mintResponses }
  }, async (request, reply) => reply.code(201).send(await mint(request.params.id, request.body?.label)))

  fastify.get('/users/:id/ingest-keys', {
    onRequest: adminOnly,
    schema: { tags: ['ingest keys'], summary: 'A user\'s ingest keys, without their secrets (admin)', params: idParam, response: { 200: ingestKeyList, 404: errorResponse } }
  }, async (request) => {
    const userId = request.params.id
    const [keys, user] = await Promise.all([listIngestKeys(fastify.db, userId), findUserById(fastify.db, userId)])
    if (!user) throw notFound(`User ${userId} does not exist`)
    return { items: keys.map(view) }
  })

  fastify.delete('/users/:id/ingest-keys/:keyId', {
    onRequest: adminOnly,
    schema: { tags: ['ingest keys'], summary: 'Revoke a user\'s ingest key (admin)', params: userIngestKeyParams, response: { 200: revokedIngestKey, 404: errorResponse } }
  }, async (request) => revoke(request.params.id, request.params.keyId))
}

export default ingestKeysRoutes
