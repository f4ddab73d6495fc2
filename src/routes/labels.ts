import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { AppError, notFound } from '../errors.js'
import { formatMicros } from '../schemas/timestamps.js'
import type { LabelRefusal } from '../labels/label-rules.js'
import { toLabelView, toVocabularyView } from '../labels/label-view.js'
import { SessionLabels } from '../labels/session-labels.js'
import { errorResponse, idParam } from '../schemas/common.js'
import {
  createLabelBody, createVocabularyBody, deletedLabel, deletedVocabularyEntry, labelsQuery, labelView, patchLabelBody,
  recordedLabel, sessionLabelParams, sessionLabels, vocabularyEntry, vocabularyList, vocabularyNameParam,
  type LabelRefusalCode
} from '../schemas/labels.js'
import { findVisibleSession } from './session-access.js'

/** A client's mistake (400) or a clash with what is stored (409). */
const REFUSAL_STATUS: Record<LabelRefusalCode, 400 | 409> = {
  unknown_label: 400,
  invalid_label_interval: 400,
  label_outside_session: 400,
  label_overlap: 409,
  label_limit: 409
}

const refusal = (verdict: LabelRefusal) => new AppError(REFUSAL_STATUS[verdict.code], verdict.code.toUpperCase(), verdict.message)

/**
 * Interval labels of a session (owner or admin; anyone else gets the 404 of
 * a missing session) and the vocabulary they come from (everyone reads it,
 * admins change it). The rules are SessionLabels'; docs/labels.md has them.
 */
const labelsRoutes: FastifyPluginAsyncZod = async (fastify) => {
  const labels = new SessionLabels(fastify.db)
  const adminOnly = fastify.requireRole('ADMIN')
  const tags = ['labels']

  fastify.get('/sessions/:id/labels', {
    onRequest: fastify.authenticate,
    schema: {
      tags,
      summary: 'A session\'s interval labels, its default label (metadata.activity) and where new labels may lie (owner or admin)',
      params: idParam,
      querystring: labelsQuery,
      response: { 200: sessionLabels, 400: errorResponse, 401: errorResponse, 404: errorResponse }
    }
  }, async (request) => {
    const { id } = request.params
    await findVisibleSession(fastify.db, request.auth, id)
    const view = await labels.list(id, { fromUs: request.query.from, toUs: request.query.to })
    if (!view) throw notFound(`Session ${id} does not exist`)
    return {
      sessionId: view.sessionId,
      active: view.active,
      readings: view.readings && { first: formatMicros(view.readings.firstUs), last: formatMicros(view.readings.lastUs) },
      labelRange: view.labelRange && { from: formatMicros(view.labelRange.fromUs), to: formatMicros(view.labelRange.toUs) },
      defaultLabel: view.defaultLabel,
      unmatchedActivity: view.unmatchedActivity,
      labels: view.labels.map(toLabelView)
    }
  })

  fastify.post('/sessions/:id/labels', {
    onRequest: fastify.authenticate,
    schema: {
      tags,
      summary: 'Label an interval of a session (owner or admin)',
      description: 'The interval is [startTime, endTime). 201 when stored; 200 with duplicate: true when the same label is stored already. ' +
        '400 UNKNOWN_LABEL, LABEL_OUTSIDE_SESSION; 409 LABEL_OVERLAP (labelId of the label in the way is in the message), LABEL_LIMIT.',
      params: idParam,
      body: createLabelBody,
      response: { 200: recordedLabel, 201: recordedLabel, 400: errorResponse, 401: errorResponse, 404: errorResponse, 409: errorResponse }
    }
  }, async (request, reply) => {
    const { id } = request.params
    await findVisibleSession(fastify.db, request.auth, id)
    const { startTime, endTime, label, note } = request.body
    const result = await labels.add(id, request.auth!.userId, { startUs: startTime, endUs: endTime, label, note: note ?? null })
    switch (result.status) {
      case 'session_not_found':
        throw notFound(`Session ${id} does not exist`)
      case 'refused':
        throw refusal(result)
      case 'duplicate':
        return reply.code(200).send({ ...toLabelView(result.label), duplicate: true, closedLabelId: null })
      case 'recorded':
        return reply.code(201).send({ ...toLabelView(result.label), duplicate: false, closedLabelId: result.closedLabelId })
    }
  })

  fastify.patch('/sessions/:id/labels/:labelId', {
    onRequest: fastify.authenticate,
    schema: {
      tags,
      summary: 'Change a label\'s times, name or note (owner or admin)',
      description: 'The same rules as adding; the range is checked only when the times change, and a change never moves another label.',
      params: sessionLabelParams,
      body: patchLabelBody,
      response: { 200: labelView, 400: errorResponse, 401: errorResponse, 404: errorResponse, 409: errorResponse }
    }
  }, async (request) => {
    const { id, labelId } = request.params
    await findVisibleSession(fastify.db, request.auth, id)
    const result = await labels.change(id, labelId, {
      startUs: request.body.startTime, endUs: request.body.endTime, label: request.body.label, note: request.body.note
    })
    switch (result.status) {
      case 'not_found':
        throw notFound(`Session ${id} has no label ${labelId}`)
      case 'refused':
        throw refusal(result)
      case 'updated':
        return toLabelView(result.label)
    }
  })

  fastify.delete('/sessions/:id/labels/:labelId', {
    onRequest: fastify.authenticate,
    schema: { tags, summary: 'Delete a label (owner or admin)', params: sessionLabelParams, response: { 200: deletedLabel, 401: errorResponse, 404: errorResponse } }
  }, async (request) => {
    const { id, labelId } = request.params
    await findVisibleSession(fastify.db, request.auth, id)
    if (!await labels.remove(id, labelId)) throw notFound(`Session ${id} has no label ${labelId}`)
    return { id: labelId, deleted: true as const }
  })

  fastify.get('/labels/vocabulary', {
    onRequest: fastify.authenticate,
    schema: { tags, summary: 'The labels sessions may carry, by name', response: { 200: vocabularyList, 401: errorResponse } }
  }, async () => ({ items: (await labels.vocabulary()).map(toVocabularyView) }))

  fastify.post('/labels/vocabulary', {
    onRequest: adminOnly,
    schema: {
      tags,
      summary: 'Add a label to the vocabulary (admin)',
      description: 'Names are stored in lower case: 1-40 characters a-z, 0-9 or _, starting with a letter. 409 VOCABULARY_EXISTS, or VOCABULARY_FULL at 100 names.',
      body: createVocabularyBody,
      response: { 201: vocabularyEntry, 400: errorResponse, 401: errorResponse, 403: errorResponse, 409: errorResponse }
    }
  }, async (request, reply) => {
    const result = await labels.addToVocabulary(request.body.name, request.body.description ?? null)
    switch (result.status) {
      case 'exists':
        throw new AppError(409, 'VOCABULARY_EXISTS', `"${request.body.name}" is in the vocabulary already`)
      case 'full':
        throw new AppError(409, 'VOCABULARY_FULL', `The vocabulary holds ${result.limit} names, the most it may; remove one first`)
      case 'added':
        return reply.code(201).send(toVocabularyView(result.entry))
    }
  })

  fastify.delete('/labels/vocabulary/:name', {
    onRequest: adminOnly,
    schema: {
      tags,
      summary: 'Remove a label from the vocabulary (admin); refused while any session\'s label carries it',
      params: vocabularyNameParam,
      response: { 200: deletedVocabularyEntry, 401: errorResponse, 403: errorResponse, 404: errorResponse, 409: errorResponse }
    }
  }, async (request) => {
    const { name } = request.params
    switch (await labels.removeFromVocabulary(name)) {
      case 'not_found':
        throw notFound(`"${name}" is not in the vocabulary`)
      case 'in_use':
        throw new AppError(409, 'VOCABULARY_IN_USE', `Labels carry "${name}"; change or delete them first`)
      case 'removed':
        return { name, deleted: true as const }
    }
  })
}

export default labelsRoutes
