import { describe, expect, it } from 'vitest'
import { CLIENT_EVENTS } from '../../src/schemas/ws-events.js'
import { build, createTestDatabase } from '../helper.js'

const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl, { SENSOR_READINGS_BATCH_SIZE: '250' })
const doc = (await app.inject({ url: '/docs/json' })).json()

describe('OpenAPI document and UI', () => {
  it('serves the Swagger UI at /docs', async () => {
    const ui = await app.inject({ url: '/docs/' })
    expect(ui.statusCode).toBe(200)
    expect(ui.headers['content-type']).toMatch(/^text\/html/)
    expect(ui.body).toContain('swagger')
  })

  it('describes the HTTP routes from their zod schemas, with bearer security where needed', () => {
    expect(doc.openapi).toBe('3.1.0')
    expect(doc.components.securitySchemes.bearerAuth).toEqual(expect.objectContaining({ type: 'http', scheme: 'bearer' }))
    expect(doc.security).toEqual([{ bearerAuth: [] }])
    const login = doc.paths['/auth/login'].post
    expect(login.security).toEqual([])
    expect(login.requestBody.content['application/json'].schema.required).toEqual(expect.arrayContaining(['email', 'publicKey']))
    expect(doc.paths['/auth/verify'].post.security).toEqual([])
    expect(doc.paths['/health'].get.security).toEqual([])
    expect(doc.paths['/users'].get.security).toBeUndefined() // inherits the bearer requirement
    expect(doc.paths['/users'].get.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['take', 'skip']))
    expect(Object.keys(doc.paths['/status'].get.responses[200].content['application/json'].schema.properties))
      .toEqual(expect.arrayContaining(['uptimeSeconds', 'activeSessions', 'openSockets', 'storage']))
    expect(Object.keys(doc.paths['/metrics'].get.responses[200].content)).toEqual(['text/plain'])
    expect(Object.keys(doc.paths).some(path => path.startsWith('/docs'))).toBe(false)
  })

  it('documents the WebSocket: a GET /ws operation and every event in the description, with this instance\'s batch size', () => {
    const ws = doc.paths['/ws'].get
    expect(ws.tags).toEqual(['websocket'])
    expect(ws.parameters[0]).toMatchObject({ name: 'access_token', in: 'query' })
    expect(Object.keys(ws.responses)).toEqual(expect.arrayContaining(['101', '401', '403', '503']))
    const text: string = doc.info.description
    const serverEvents = ['session_created', 'session_already_exist', 'sensor_readings_batch_written', 'invalid_sensor_readings_batch_size',
      'invalid_sensor_reading_schema', 'session_destroyed', 'session_not_found', 'storage_unavailable', 'error']
    for (const event of [...Object.keys(CLIENT_EVENTS), ...serverEvents]) expect(text, event).toContain(`| \`${event}\` |`)
    expect(text).toContain('reading × 250')
    expect(text).toContain('| 1001 |')
  })
})
