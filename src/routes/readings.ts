import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { openReadingsCsv } from '../db/readings-export.js'
import { findReadingsPage } from '../db/readings-repository.js'
import { errorResponse, idParam } from '../schemas/common.js'
import { encodeReadingsCursor, readingsPage, readingsQuery } from '../schemas/readings.js'
import { findVisibleSession } from './session-access.js'

const readingsRoutes: FastifyPluginAsyncZod = async (fastify) => {
  fastify.get('/sessions/:id/readings', {
    onRequest: fastify.authenticate,
    schema: {
      tags: ['readings'],
      summary: 'A page of a session\'s readings in time order (owner or admin)',
      params: idParam,
      querystring: readingsQuery,
      response: { 200: readingsPage, 400: errorResponse, 404: errorResponse }
    }
  }, async (request) => {
    const { id } = request.params
    await findVisibleSession(fastify.db, request.auth, id)
    const page = await findReadingsPage(fastify.db, id, request.query)
    return { items: page.items, nextCursor: page.next && encodeReadingsCursor(page.next), take: request.query.take }
  })

  fastify.get('/sessions/:id/readings.csv', {
    onRequest: fastify.authenticate,
    // A HEAD would run the whole COPY only to discard it.
    exposeHeadRoute: false,
    schema: {
      tags: ['readings'],
      summary: 'The whole session as CSV `timestamp,sensor,x,y,z`, streamed (owner or admin)',
      // No response schema: the body is a stream, and errors use the shared error shape.
      params: idParam
    }
  }, async (request, reply) => {
    const { id } = request.params
    await findVisibleSession(fastify.db, request.auth, id)
    const csv = await openReadingsCsv(fastify.db, id, request.log)
    return reply
      .type('text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="session-${id}.csv"`)
      .send(csv)
  })
}

export default readingsRoutes
