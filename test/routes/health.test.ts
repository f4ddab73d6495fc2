import { describe, expect, inject, it } from 'vitest'
import { expectsHypertable } from '../fixtures/timescaledb.js'
import { build, createTestDatabase } from '../helper.js'

const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl, { COMMIT_SHA: 'abc123' })

describe('health and status', () => {
  it('reports the database as ready', async () => {
    const response = await app.inject({ url: '/health' })
    expect(response.statusCode).toBe(200)
    expect(response.json()).toEqual({ status: 'ok', database: 'ok' })
  })

  it('says which storage the readings live on', async () => {
    const status = (await app.inject({ url: '/status' })).json()
    expect(status).toMatchObject({ service: 'motion-ingest', commit: 'abc123', sensorReadingsBatchSize: 375, sessionTtlSeconds: 600 })
    expect(status.storage.postgresVersion).toMatch(/^\d+/)
    // What the server offers decides, not how the suite got it: a DATABASE_URL may point at TimescaleDB.
    const hypertable = await expectsHypertable(inject('databaseServerUrl'))
    expect(status.storage.kind).toBe(hypertable ? 'timescaledb' : 'postgresql')
    expect(status.storage.readingsHypertable).toBe(hypertable)
    if (hypertable) expect(status.storage.timescaledbVersion).toMatch(/^\d+\.\d+/)
    else expect(status.storage.timescaledbVersion).toBeNull()
  })

  it('answers unknown routes with the JSON error shape', async () => {
    const response = await app.inject({ url: '/nope' })
    expect(response.statusCode).toBe(404)
    expect(response.json()).toMatchObject({ error: 'NOT_FOUND' })
  })
})
