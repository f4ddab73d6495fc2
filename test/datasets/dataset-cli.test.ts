import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { appendFile, mkdtemp, readFile, rename, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { PROGRESS_FILE } from '../../src/cli/dataset.js'
import type { DatasetManifest } from '../../src/datasets/manifest.js'
import { build, createTestDatabase, createUserWithToken } from '../helper.js'
import { insertSyntheticSession } from './fixtures.js'
import type { SyntheticSession } from './synthetic.js'

const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl)
const dir = await mkdtemp(path.join(tmpdir(), 'dataset-cli-'))
afterAll(() => rm(dir, { recursive: true, force: true }))

const BIN = path.resolve(import.meta.dirname, '../../bin/motion-ingest.js')
const START = Date.UTC(2024, 4, 1, 8, 0, 0) * 1000
const SHORT: SyntheticSession = { startUs: START + 3_000, seconds: 4, offsetsUs: [0, 2_000, 7_000] }

interface Run { code: number, stdout: string, stderr: string }

function cli (args: string[]): Promise<Run> {
  return new Promise(resolve => {
    execFile(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH, DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn', DATASET_PSEUDONYM_KEY: 'cli-key' },
      maxBuffer: 64 << 20
    }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }))
  })
}

const sessions: number[] = []
for (let i = 0; i < 4; i++) {
  const { user } = await createUserWithToken(app)
  sessions.push(await insertSyntheticSession(app, user.id, SHORT, { createdAt: `2024-05-0${i + 1}T08:00:00Z`, metadata: { activity: 'cycling' } }))
}
const OPTIONS = ['--format', 'parquet', '--rate', '50', '--split', '0.5,0.5,0', '--seed', 'cli', '--sessions', sessions.join(',')]
const out = path.join(dir, 'set')
const manifestOf = async () => JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8')) as DatasetManifest
const sha256 = async (file: string) => createHash('sha256').update(await readFile(file)).digest('hex')

describe('motion-ingest dataset export', () => {
  it('writes a file per session, labels.csv and manifest.json into a folder, split by user', async () => {
    const run = await cli(['dataset', 'export', '--out', out, ...OPTIONS])
    expect(run.stderr).toMatch(/Wrote 4 sessions of 4 users \(0 kept from an earlier run\)/)
    expect(run.code).toBe(0)
    const manifest = await manifestOf()
    expect(manifest.sessions.map(session => session.id)).toEqual(sessions)
    for (const file of manifest.files) expect(await sha256(path.join(out, file.path))).toBe(file.sha256)
    for (const session of manifest.sessions) expect(session.file.path).toBe(`data/split=${session.split}/session-${session.id}.parquet`)
    await expect(stat(path.join(out, PROGRESS_FILE))).rejects.toThrow()
  })

  it('resumes: keeps the files whose sha256 still matches, writes again the damaged and the missing ones', async () => {
    const before = await manifestOf()
    const [first, second] = before.sessions
    await appendFile(path.join(out, first!.file.path), 'x')
    await rm(path.join(out, second!.file.path))
    // As if the run had stopped after its last session, before the manifest.
    await rename(path.join(out, 'manifest.json'), path.join(out, PROGRESS_FILE))
    const run = await cli(['dataset', 'export', '--out', out, ...OPTIONS])
    expect(run.code).toBe(0)
    expect(run.stderr).toMatch(/\(2 kept from an earlier run\)/)
    const after = await manifestOf()
    expect(after.sessions.map(session => session.file.sha256)).toEqual(before.sessions.map(session => session.file.sha256))
    for (const file of after.files) expect(await sha256(path.join(out, file.path))).toBe(file.sha256)
    await expect(stat(path.join(out, PROGRESS_FILE))).rejects.toThrow()
    // A finished export run again keeps everything.
    expect((await cli(['dataset', 'export', '--out', out, ...OPTIONS])).stderr).toMatch(/\(4 kept from an earlier run\)/)
  })

  it('refuses a folder holding an export with other parameters, and options the query schema refuses', async () => {
    const other = await cli(['dataset', 'export', '--out', out, ...OPTIONS, '--rate', '25'])
    expect(other.code).toBe(1)
    expect(other.stderr).toMatch(/holds an export with other parameters/)
    const bad = await cli(['dataset', 'export', '--out', path.join(dir, 'bad'), '--split', '0.5,0.2', '--purity', '0.3'])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(/--purity: .*; --split: three shares adding up to 1/)
    const none = await cli(['dataset', 'export', '--out', path.join(dir, 'none'), '--labels', 'walking', '--sessions', sessions.join(',')])
    expect(none.code).toBe(1)
    expect(none.stderr).toMatch(/Left out 4 sessions: label/)
    expect(none.stderr).toMatch(/No ended session matches/)
  })
})
