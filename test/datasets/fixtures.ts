import type { FastifyInstance } from 'fastify'
import { formatMicros } from '../../src/schemas/timestamps.js'
import { SENSORS } from '../../src/schemas/sensors.js'
import { insertReadings, insertSession, type SessionFixture } from '../fixtures/sessions.js'
import { syntheticReadings, type SyntheticSession } from './synthetic.js'

/** Stores a synthetic session (synthetic.ts) as an ended session of `userId` and computes its report. */
export async function insertSyntheticSession (app: FastifyInstance, userId: number, session: SyntheticSession, fixture: SessionFixture = {}): Promise<number> {
  const id = await insertSession(app.db, userId, fixture)
  await insertReadings(app.db, id, syntheticReadings(session).map(reading => ({
    timestamp: formatMicros(reading.us),
    sensor: SENSORS[reading.sensor]!,
    x: reading.x,
    y: reading.y,
    z: reading.z
  })))
  if (fixture.destroyed !== false) {
    const result = await app.reports.report(id)
    if (result.status !== 'ready') throw new Error(`No report for session ${id}: ${result.status}`)
  }
  return id
}

/** Parses CSV without quoted fields (what the data files hold) into records by header. */
export function parseCsv (text: string): Array<Record<string, string>> {
  const [header, ...lines] = text.trimEnd().split('\n')
  const columns = header!.split(',')
  return lines.map(line => {
    const cells = line.split(',')
    return Object.fromEntries(columns.map((column, i) => [column, cells[i] ?? '']))
  })
}

/** Microseconds since the epoch of an ISO-8601 UTC timestamp with six fractional digits. */
export const microsOf = (iso: string) => Date.parse(iso.slice(0, 19) + 'Z') * 1000 + Number(iso.slice(20, 26))
