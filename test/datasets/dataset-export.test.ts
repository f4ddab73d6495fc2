import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createHash } from 'node:crypto'
import { parquetMetadata, parquetReadObjects } from 'hyparquet'
import { compressors } from 'hyparquet-compressors'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { planDataset, type DatasetParameters } from '../../src/datasets/dataset-plan.js'
import { writeDataset } from '../../src/datasets/dataset-writer.js'
import { FolderDatasetSink } from '../../src/datasets/folder-sink.js'
import { sessionLabelSource } from '../../src/datasets/label-source.js'
import type { DatasetManifest } from '../../src/datasets/manifest.js'
import { userNaming } from '../../src/datasets/pseudonyms.js'
import { DatasetConnection } from '../../src/db/readings/dataset-readings.js'
import { SessionLabels } from '../../src/labels/session-labels.js'
import { build, createTestDatabase, createUserWithToken } from '../helper.js'
import { microsOf, insertSyntheticSession, parseCsv } from './fixtures.js'
import { interpolationTolerance, syntheticReadings, truth, type SyntheticSession } from './synthetic.js'

const START = Date.UTC(2024, 4, 1, 8, 0, 0) * 1000
const GAP = { sensor: 1, fromUs: START + 9_000_000, toUs: START + 11_000_000 }
// 20 s at 100 Hz per sensor, readings a few ms off the 50 Hz grid, the gyroscope silent for 2 s.
const KNOWN: SyntheticSession = { startUs: START + 3_000, seconds: 20, offsetsUs: [0, 2_000, 7_000], gap: GAP }
const WALKING_UNTIL = START + 6_000_000

let app: FastifyInstance
let folder: string
let knownId: number
let defaultLabelled: number
let unmatched: number
const users: number[] = []

async function exportTo (dir: string, parameters: Partial<DatasetParameters> & { filters?: DatasetParameters['filters'] }): Promise<DatasetManifest> {
  const plan = await planDataset({
    db: app.db,
    reportOf: async id => {
      const result = await app.reports.report(id)
      return result.status === 'ready' ? result.report : null
    },
    labels: sessionLabelSource(new SessionLabels(app.db))
  }, { layout: 'wide', format: 'csv', windowSeconds: 2.56, overlap: 0.5, purity: 0.8, filters: {}, ...parameters })
  const connection = await DatasetConnection.open(app.exportPool)
  try {
    return await writeDataset(plan, {
      source: connection,
      sink: new FolderDatasetSink(dir),
      naming: userNaming({ realIds: false, key: 'test-key' }),
      service: { name: 'motion-ingest', version: 'test' }
    })
  } finally {
    await connection.release()
  }
}

const sha256 = async (file: string) => createHash('sha256').update(await readFile(file)).digest('hex')

async function readParquet (file: string): Promise<Array<Record<string, unknown>>> {
  const buffer = await readFile(file)
  const arrayBuffer = buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength)
  // hyparquet is written apart from the Rust writer that made the file: an independent reader.
  return parquetReadObjects({ file: arrayBuffer, compressors, parsers: { timestampFromMicroseconds: (us: bigint) => us } }) as Promise<Array<Record<string, unknown>>>
}

beforeAll(async () => {
  app = await build(await createTestDatabase())
  folder = await mkdtemp(path.join(tmpdir(), 'dataset-export-'))
  for (let i = 0; i < 2; i++) users.push((await createUserWithToken(app)).user.id)
  knownId = await insertSyntheticSession(app, users[0]!, KNOWN, { createdAt: '2024-05-01T08:00:00Z', metadata: { sampleRateHz: 100 } })
  const labels = new SessionLabels(app.db)
  for (const [startUs, endUs, label] of [[START + 3_000, WALKING_UNTIL, 'walking'], [WALKING_UNTIL, START + 20_000_001, 'cycling']] as const) {
    const added = await labels.add(knownId, null, { startUs, endUs, label, note: label === 'walking' ? 'to the station, "fast"' : null })
    expect(added.status).toBe('recorded')
  }
  const short: SyntheticSession = { startUs: START + 3_000, seconds: 3, offsetsUs: [0, 2_000, 7_000] }
  defaultLabelled = await insertSyntheticSession(app, users[1]!, short, { createdAt: '2024-05-02T08:00:00Z', metadata: { activity: ' Cycling ' } })
  unmatched = await insertSyntheticSession(app, users[1]!, short, { createdAt: '2024-05-03T08:00:00Z', metadata: { activity: 'Skateboarding' } })
  // Neither a flagged session nor one still recording is exported.
  await insertSyntheticSession(app, users[1]!, short, { createdAt: '2024-05-04T08:00:00Z', flagReason: 'phone in a drawer' })
  await insertSyntheticSession(app, users[1]!, short, { createdAt: '2024-05-05T08:00:00Z', destroyed: false })
})

afterAll(async () => {
  await rm(folder, { recursive: true, force: true })
})

describe('a dataset export of a session whose truth is known', () => {
  let manifest: DatasetManifest
  let rows: Array<Record<string, string>>

  beforeAll(async () => {
    manifest = await exportTo(path.join(folder, 'wide-csv'), { layout: 'wide', format: 'csv', rateHz: 50 })
    rows = parseCsv(await readFile(path.join(folder, 'wide-csv', 'data', `session-${knownId}.csv`), 'utf8'))
  })

  it('takes the ended, unflagged sessions, with every file\'s sha256 and the reason for the unlabelled one', async () => {
    expect(manifest.sessions.map(session => session.id)).toEqual([knownId, defaultLabelled, unmatched])
    for (const file of manifest.files) expect(await sha256(path.join(folder, 'wide-csv', ...file.path.split('/')))).toBe(file.sha256)
    const byId = new Map(manifest.sessions.map(session => [session.id, session]))
    expect(byId.get(defaultLabelled)!.labels).toMatchObject({ default: 'cycling', unmatchedActivity: null })
    expect(byId.get(defaultLabelled)!.labels.seconds.cycling).toBeCloseTo(2.997, 3)
    expect(byId.get(unmatched)!.labels).toMatchObject({ default: null, unmatchedActivity: 'Skateboarding', seconds: {} })
    expect(byId.get(unmatched)!.labels.unlabelledSeconds).toBeCloseTo(2.997, 3)
    const known = byId.get(knownId)!
    expect(known.labels.seconds.walking).toBeCloseTo(5.997, 3)
    expect(known.labels.seconds.cycling).toBeCloseTo(14, 3)
    expect(known.completeness.problems).toContain('gaps')
    expect(known.user).toMatch(/^u_[0-9a-f]{16}$/)
    expect(known.rows).toBe(rows.length)
    expect(known.segments?.count).toBe(2)
    expect(manifest.totals.sessions).toBe(3)
    expect(manifest.totals.labelSeconds.cycling).toBeCloseTo(16.997, 3)
    expect(manifest.parameters).toMatchObject({ layout: 'wide', format: 'csv', rateHz: 50 })
  })

  it('interpolates every channel within the stated tolerance of the analytic signal', () => {
    expect(rows.length).toBeGreaterThan(800)
    const channels = ['acc_x', 'acc_y', 'acc_z', 'gyro_x', 'gyro_y', 'gyro_z', 'mag_x', 'mag_y', 'mag_z']
    for (const row of rows) {
      const us = microsOf(row.timestamp!)
      expect(us % 20_000).toBe(0)
      channels.forEach((channel, c) => {
        const error = Math.abs(Number(row[channel]) - truth(Math.floor(c / 3), c % 3, us))
        expect(error, `${channel} at ${row.timestamp}`).toBeLessThanOrEqual(interpolationTolerance(c))
      })
      expect(row.session_id).toBe(String(knownId))
      expect(row.label).toBe(us < WALKING_UNTIL ? 'walking' : 'cycling')
    }
  })

  it('writes no row in the gap, and numbers the segments either side of it', () => {
    const gyroscope = syntheticReadings(KNOWN).filter(reading => reading.sensor === GAP.sensor).map(reading => reading.us)
    const lastBefore = Math.max(...gyroscope.filter(us => us < GAP.fromUs))
    const firstAfter = Math.min(...gyroscope.filter(us => us >= GAP.toUs))
    expect(rows.filter(row => microsOf(row.timestamp!) > lastBefore && microsOf(row.timestamp!) < firstAfter)).toEqual([])
    expect(new Set(rows.map(row => row.segment))).toEqual(new Set(['0', '1']))
    expect(rows.every(row => (row.segment === '0') === (microsOf(row.timestamp!) < GAP.fromUs))).toBe(true)
  })

  it('writes the labels as the rows got them, interval and default, quoting notes', async () => {
    const text = await readFile(path.join(folder, 'wide-csv', 'labels.csv'), 'utf8')
    expect(text.split('\n')).toEqual(expect.arrayContaining([
      `${knownId},2024-05-01T08:00:00.003000Z,2024-05-01T08:00:06.000000Z,walking,interval,"to the station, ""fast"""`,
      `${knownId},2024-05-01T08:00:06.000000Z,2024-05-01T08:00:20.000001Z,cycling,interval,`,
      `${defaultLabelled},2024-05-01T08:00:00.003000Z,2024-05-01T08:00:03.000001Z,cycling,default,`
    ]))
  })

  it('writes the same values to Parquet, read back by an independent reader, timestamps to the microsecond', async () => {
    const parquet = await exportTo(path.join(folder, 'wide-parquet'), { layout: 'wide', format: 'parquet', rateHz: 50, filters: { sessionIds: [knownId] } })
    const file = path.join(folder, 'wide-parquet', 'data', `session-${knownId}.parquet`)
    expect(await sha256(file)).toBe(parquet.sessions[0]!.file.sha256)
    const records = await readParquet(file)
    expect(records.length).toBe(rows.length)
    records.forEach((record, i) => {
      const row = rows[i]!
      expect(record.timestamp).toBe(BigInt(microsOf(row.timestamp!)))
      for (const channel of ['acc_x', 'gyro_y', 'mag_z']) expect(record[channel]).toBe(Number(row[channel]))
      expect(record.label).toBe(row.label)
      expect(record.session_id).toBe(BigInt(knownId))
      expect(record.segment).toBe(Number(row.segment))
    })
    const buffer = await readFile(file)
    const metadata = parquetMetadata(buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength))
    const timestamp = metadata.schema.find(element => element.name === 'timestamp')
    expect(timestamp?.logical_type).toEqual({ type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' })
    expect(metadata.schema.find(element => element.name === 'acc_x')?.type).toBe('DOUBLE')
    expect(new Set(metadata.row_groups.flatMap(group => group.columns.map(column => column.meta_data?.codec)))).toEqual(new Set(['ZSTD']))
    const accX = metadata.row_groups[0]!.columns.find(column => column.meta_data?.path_in_schema[0] === 'acc_x')
    expect(accX?.meta_data?.encodings).toContain('BYTE_STREAM_SPLIT')
  })

  it('cuts labelled windows of 128 samples, none across the gap or an impure change of label', async () => {
    const windows = await exportTo(path.join(folder, 'windows'), { layout: 'windows', format: 'parquet', rateHz: 50, filters: { sessionIds: [knownId] } })
    const records = await readParquet(path.join(folder, 'windows', 'data', `session-${knownId}.windows.parquet`))
    expect(records.length).toBe(windows.sessions[0]!.windows!.kept)
    expect(windows.sessions[0]!.windows!.impure).toBeGreaterThan(0)
    for (const record of records) {
      const start = Number(record.start)
      const end = Number(record.end)
      expect(end - start).toBe(127 * 20_000)
      expect(end < GAP.fromUs || start >= GAP.toUs).toBe(true)
      const walking = Math.max(0, Math.min(end + 20_000, WALKING_UNTIL) - start) / 20_000
      expect(record.label).toBe(walking > 64 ? 'walking' : 'cycling')
      expect(Math.max(walking, 128 - walking) / 128).toBeGreaterThanOrEqual(0.8)
      expect(Math.abs((record.acc_x_0 as number) - truth(0, 0, start))).toBeLessThanOrEqual(interpolationTolerance(0))
      expect(Math.abs((record.mag_z_127 as number) - truth(2, 2, end))).toBeLessThanOrEqual(interpolationTolerance(8))
    }
  })

  it('writes the long layout as the CSV download has it, and the same readings to Parquet', async () => {
    await exportTo(path.join(folder, 'long-csv'), { layout: 'long', format: 'csv', filters: { sessionIds: [knownId] } })
    const csv = await readFile(path.join(folder, 'long-csv', 'data', `session-${knownId}.csv`), 'utf8')
    const download = await app.inject({ method: 'GET', url: `/sessions/${knownId}/readings.csv`, headers: { authorization: `Bearer ${(await createUserWithToken(app, 'ADMIN')).token}` } })
    expect(csv).toBe(download.body)
    await exportTo(path.join(folder, 'long-parquet'), { layout: 'long', format: 'parquet', filters: { sessionIds: [knownId] } })
    const records = await readParquet(path.join(folder, 'long-parquet', 'data', `session-${knownId}.parquet`))
    const lines = parseCsv(csv)
    expect(records.length).toBe(lines.length)
    records.forEach((record, i) => {
      const line = lines[i]!
      expect(record.timestamp).toBe(BigInt(microsOf(line.timestamp!)))
      expect(record.sensor).toBe(line.sensor)
      expect([record.x, record.y, record.z]).toEqual([Number(line.x), Number(line.y), Number(line.z)])
      expect(record.label).toBe(microsOf(line.timestamp!) < WALKING_UNTIL ? 'walking' : 'cycling')
    })
  })
})

describe('the split', () => {
  it('keeps every user\'s sessions on one side, the same for the same seed', async () => {
    const splitUsers: number[] = []
    for (let i = 0; i < 8; i++) splitUsers.push((await createUserWithToken(app)).user.id)
    const short: SyntheticSession = { startUs: START, seconds: 1, offsetsUs: [0, 0, 0] }
    for (const userId of splitUsers) {
      for (let j = 0; j < 2; j++) await insertSyntheticSession(app, userId, short, { createdAt: '2024-06-01T08:00:00Z' })
    }
    const parameters = { layout: 'wide' as const, format: 'csv' as const, split: { fractions: [0.5, 0.25, 0.25] as [number, number, number], seed: 'fixed' }, filters: { userIds: splitUsers } }
    const first = await exportTo(path.join(folder, 'split-a'), parameters)
    const second = await exportTo(path.join(folder, 'split-b'), parameters)
    const sides = new Map<string, Set<string>>()
    for (const session of first.sessions) {
      expect(session.file.path).toBe(`data/split=${session.split}/session-${session.id}.csv`)
      sides.set(session.user, (sides.get(session.user) ?? new Set()).add(session.split!))
    }
    expect(sides.size).toBe(8)
    for (const set of sides.values()) expect(set.size).toBe(1)
    expect(second.sessions.map(session => session.split)).toEqual(first.sessions.map(session => session.split))
    const bySplit = first.totals.bySplit!
    expect(Object.values(bySplit).reduce((sum, side) => sum + side!.users, 0)).toBe(8)
    expect(first.parameters.split).toEqual({ fractions: [0.5, 0.25, 0.25], seed: 'fixed' })
  })
})
