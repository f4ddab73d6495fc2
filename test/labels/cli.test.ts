import { execFile } from 'node:child_process'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { insertReadings, insertSession, type ReadingFixture } from '../fixtures/sessions.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'

const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl)
const owner = await createUserWithToken(app, 'BETATESTER')

const BIN = path.resolve(import.meta.dirname, '../../bin/motion-ingest.js')

interface Run { code: number, stdout: string, stderr: string }

function cli (args: string[]): Promise<Run> {
  return new Promise(resolve => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' } },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }))
  })
}

const readings: ReadingFixture[] = Array.from({ length: 100 }, (_, i) => ({
  timestamp: new Date(Date.UTC(2024, 5, 1, 9, 0, 0) + i * 100).toISOString(), sensor: 'Gyroscope', x: i, y: 0, z: 0
}))
const sessionId = await insertSession(app.db, owner.user.id, { createdAt: '2024-06-01T08:59:00Z', metadata: { activity: 'Hiking' } })
await insertReadings(app.db, sessionId, readings)

describe('motion-ingest labels and vocabulary', () => {
  it('adds, lists and deletes a session\'s labels under the routes\' rules', async () => {
    const added = await cli(['labels', 'add', String(sessionId), '--start', '2024-06-01T09:00:00.000001Z', '--end', '2024-06-01T09:00:05Z', '--label', 'Walking', '--note', 'first', '--json'])
    expect(added.code, added.stderr).toBe(0)
    const label = JSON.parse(added.stdout)
    expect(label).toMatchObject({ sessionId, startTime: '2024-06-01T09:00:00.000001Z', endTime: '2024-06-01T09:00:05.000000Z', label: 'walking', note: 'first', createdBy: null, duplicate: false })

    const overlap = await cli(['labels', 'add', String(sessionId), '--start', '2024-06-01T09:00:04Z', '--end', '2024-06-01T09:00:06Z', '--label', 'still'])
    expect(overlap.code).toBe(1)
    expect(overlap.stderr).toContain(`error: label_overlap: The label overlaps label ${label.id as number} (walking`)
    const outside = await cli(['labels', 'add', String(sessionId), '--start', '2024-06-01T08:00:00Z', '--end', '2024-06-01T08:00:01Z', '--label', 'still'])
    expect(outside.stderr).toContain('error: label_outside_session')
    const badTime = await cli(['labels', 'add', String(sessionId), '--start', 'noon', '--end', '2024-06-01T09:00:01Z', '--label', 'still'])
    expect(badTime.code).toBe(1)
    expect(badTime.stderr).toContain('error: --start: must be an ISO-8601 timestamp with an offset')

    const list = await cli(['labels', 'list', String(sessionId)])
    expect(list.code, list.stderr).toBe(0)
    expect(list.stdout).toContain('2024-06-01T09:00:00.000001Z')
    expect(list.stdout).toContain('1 label; default label: none (metadata.activity "Hiking" is not in the vocabulary)')
    const json = JSON.parse((await cli(['labels', 'list', String(sessionId), '--json'])).stdout)
    expect(json).toMatchObject({ sessionId, defaultLabel: null, unmatchedActivity: 'Hiking', labels: [{ id: label.id, label: 'walking' }] })

    // The HTTP routes see what the CLI wrote.
    const http = await app.inject({ url: `/sessions/${sessionId}/labels`, headers: bearer(owner.token) })
    expect(http.json().labels).toEqual([expect.objectContaining({ id: label.id, note: 'first' })])

    expect((await cli(['labels', 'delete', String(sessionId), String(label.id)])).stdout).toContain(`Deleted label ${label.id as number} of session ${sessionId}.`)
    const again = await cli(['labels', 'delete', String(sessionId), String(label.id)])
    expect(again.code).toBe(1)
    expect(again.stderr).toContain(`error: Session ${sessionId} has no label ${label.id as number}.`)
    expect((await cli(['labels', 'list', '999999'])).stderr).toContain('error: Session 999999 does not exist.')
  })

  it('lists and extends the vocabulary; a new name matches metadata.activity', async () => {
    const list = await cli(['vocabulary', 'list', '--json'])
    expect(list.code, list.stderr).toBe(0)
    expect(JSON.parse(list.stdout).items.map((entry: { name: string }) => entry.name)).toEqual(['cycling', 'in_vehicle', 'running', 'still', 'walking'])
    const added = await cli(['vocabulary', 'add', 'Hiking', '--description', 'walking uphill'])
    expect(added.code, added.stderr).toBe(0)
    expect(added.stdout).toContain('Added "hiking" to the vocabulary.')
    expect((await cli(['vocabulary', 'add', 'hiking'])).stderr).toContain('error: "hiking" is in the vocabulary already.')
    expect((await cli(['vocabulary', 'add', 'up hill'])).stderr).toContain('error: name: must be 1-40 characters')
    expect((await cli(['vocabulary', 'list'])).stdout).toMatch(/hiking\s+walking uphill/)
    expect((await cli(['labels', 'list', String(sessionId)])).stdout).toContain('default label: hiking')
    expect((await cli(['vocabulary', 'remove', 'hiking'])).stdout).toContain('Removed "hiking" from the vocabulary.')
    expect((await cli(['vocabulary', 'remove', 'hiking'])).stderr).toContain('error: "hiking" is not in the vocabulary.')
  })
})
