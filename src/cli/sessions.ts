import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import type { Command } from 'commander'
import type { Pool } from '../db/pool.js'
import { isStatementTimeout } from '../db/errors.js'
import { ensureSessionReport, reportOptions, type EnsureReportResult } from '../reports/report-store.js'
import { findBatchSummary, findPurgeableSessions, findSessionById, listSessions, purgeFlaggedSessions } from '../db/sessions/sessions-repository.js'
import { detectStorage } from '../db/startup/storage.js'
import { findUserById } from '../db/users-repository.js'
import type { Config } from '../config.js'
import { INTEGRITY_VERDICTS, type Integrity } from '../schemas/integrity.js'
import type { Session } from '../schemas/sessions.js'
import { confirm } from './confirm.js'
import { parseDuration } from './duration.js'
import { exportSession } from './export-session.js'
import { describeReport, reportColumn } from './report-format.js'
import { CliError, withContext } from './run.js'
import { positiveInt } from './options.js'
import { formatTable } from './table.js'

const PAGE = 500

function summaryRow (s: Session) {
  return {
    id: s.id,
    user: s.userId,
    createdAt: s.createdAt,
    ended: s.destroyedAt ? `${s.destroyedAt} (${s.destroyReason})` : 'active',
    readings: s.totalSensorReadingsWritten,
    integrity: s.integrity ?? '',
    report: reportColumn(s),
    flagged: s.flaggedIncorrect ? `yes: ${s.flagReason ?? ''}` : ''
  }
}

async function requireSession (pool: Pool, id: number): Promise<Session> {
  const found = await findSessionById(pool, id)
  if (!found) throw new CliError(`Session ${id} does not exist.`)
  return found
}

async function requireUser (pool: Pool, id: number): Promise<void> {
  if (!await findUserById(pool, id)) throw new CliError(`User ${id} does not exist.`)
}

function parseIntegrity (value: string | undefined): Integrity | undefined {
  if (value === undefined) return undefined
  if (!(INTEGRITY_VERDICTS as readonly string[]).includes(value)) {
    throw new CliError(`--integrity must be one of ${INTEGRITY_VERDICTS.join(', ')}, got "${value}".`)
  }
  return value as Integrity
}

/**
 * The session's completeness report, computed and stored first when it has
 * none (or always, with recompute); `active` while it is still recording.
 */
async function reportOf (pool: Pool, config: Config, sessionId: number, recompute: boolean): Promise<EnsureReportResult> {
  const storage = await detectStorage(pool, false)
  const timeoutMs = config.sessions.reportTimeoutMs
  try {
    return await ensureSessionReport(pool, sessionId, { ...reportOptions(storage, timeoutMs), recompute })
  } catch (err) {
    if (!isStatementTimeout(err)) throw err
    throw new CliError(`The report of session ${sessionId} took longer than ${timeoutMs} ms; ` +
      'run again with a larger SESSION_REPORT_TIMEOUT_MS.')
  }
}

/** Every session of a user, newest first, read a page at a time. */
async function * allSessionsOf (pool: Pool, userId: number): AsyncGenerator<Session> {
  for (let skip = 0; ; skip += PAGE) {
    const { items } = await listSessions(pool, { userId }, PAGE, skip)
    yield * items
    if (items.length < PAGE) return
  }
}

/** A bar only for a person watching stderr, and not over CSV being printed to their terminal. */
const showProgress = (toStdout: boolean) => Boolean(process.stderr.isTTY) && !(toStdout && process.stdout.isTTY)

function describeSession (s: Session, batches: Awaited<ReturnType<typeof findBatchSummary>>): string {
  const sent = s.totalSensorReadingsSent === null ? 'not reported by the phone' : `${s.totalSensorReadingsSent} reported sent`
  return [
    `Session ${s.id} of user ${s.userId}`,
    `  created    ${s.createdAt}`,
    `  expires    ${s.expiresAt}`,
    `  ended      ${s.destroyedAt ? `${s.destroyedAt} (${s.destroyReason})` : 'no, still recording'}`,
    `  readings   ${s.totalSensorReadingsWritten} written, ${sent}${s.integrity ? ` (integrity: ${s.integrity})` : ''}`,
    `  batches    ${batches.written} written, ${batches.missing} missing below batch ${batches.highestBatchId ?? '-'}`,
    `  flagged    ${s.flaggedIncorrect ? `yes, at ${s.flaggedAt}: ${s.flagReason}` : 'no'}`,
    `  metadata   ${JSON.stringify(s.metadata)}`
  ].join('\n')
}

export function registerSessionCommands (program: Command): void {
  const sessions = program.command('sessions').description('read, export and purge recorded sessions')

  sessions.command('list')
    .description('list sessions of every user (or of --user), newest first, with their report verdict')
    .option('--user <id>', 'only this user\'s sessions')
    .option('--integrity <verdict>', `only sessions with this integrity verdict: ${INTEGRITY_VERDICTS.join(', ')}`)
    .option('--incomplete', 'only sessions whose report found a problem (sessions without a report match neither filter)')
    .option('--complete', 'only sessions whose report found no problem')
    .option('--take <n>', 'how many', '100')
    .option('--skip <n>', 'how many to skip', '0')
    .option('--json', 'print JSON')
    .action((options: { user?: string, integrity?: string, incomplete?: boolean, complete?: boolean, take: string, skip: string, json?: boolean }) => withContext(async ({ pool }) => {
      const userId = options.user === undefined ? undefined : positiveInt(options.user, '--user')
      const integrity = parseIntegrity(options.integrity)
      if (options.incomplete && options.complete) throw new CliError('Give --incomplete or --complete, not both.')
      const incomplete = options.incomplete ? true : options.complete ? false : undefined
      const take = positiveInt(options.take, '--take')
      const skip = positiveInt(options.skip, '--skip', 0)
      if (userId !== undefined) await requireUser(pool, userId)
      const page = await listSessions(pool, { userId, integrity, incomplete }, take, skip)
      if (options.json) {
        console.log(JSON.stringify(page))
        return
      }
      if (page.items.length) console.log(formatTable(page.items.map(summaryRow)))
      console.log(`${page.items.length} of ${page.total} sessions`)
    }))

  sessions.command('show <id>')
    .description('one session: times, counts, integrity, batches, flag, metadata and its completeness report')
    .option('--recompute', 'compute the report again and store it (e.g. after an upgrade)')
    .option('--json', 'print JSON: the session with batches and the full report (null while recording)')
    .action((id: string, options: { json?: boolean, recompute?: boolean }) => withContext(async ({ pool, config }) => {
      const sessionId = positiveInt(id, 'id')
      // The report first: the session read after it is at least as recent (ended, with the summary).
      const result = await reportOf(pool, config, sessionId, options.recompute ?? false)
      if (result.status === 'not-found') throw new CliError(`Session ${sessionId} does not exist.`)
      const found = await requireSession(pool, sessionId)
      const report = result.status === 'ready' ? result.report : null
      const batches = await findBatchSummary(pool, found.id)
      if (options.json) {
        console.log(JSON.stringify({ ...found, batches, report }))
        return
      }
      console.log(describeSession(found, batches))
      console.log()
      console.log(report
        ? describeReport(report)
        : 'Completeness report: none yet, the session is still recording; the report is computed when it ends.')
    }))

  sessions.command('export [id]')
    .description('export a session as CSV (timestamp,sensor,x,y,z) to a file or stdout, or all of a user\'s sessions into a folder')
    .option('-o, --output <file>', 'write the session to this file instead of stdout')
    .option('--user <id>', 'export every session of this user (with --out)')
    .option('--out <dir>', 'folder for --user exports, one session-<id>.csv per session')
    .action((id: string | undefined, options: { output?: string, user?: string, out?: string }) => withContext(async ({ pool, logger }) => {
      if ((id === undefined) === (options.user === undefined)) throw new CliError('Give a session id, or --user <id> with --out <dir>.')
      if (id !== undefined) {
        if (options.out !== undefined) throw new CliError('--out is for --user exports; use -o <file> for one session.')
        const session = await requireSession(pool, positiveInt(id, 'id'))
        const rows = await exportSession(pool, session, { file: options.output, progress: showProgress(options.output === undefined), logger })
        if (options.output !== undefined) console.error(`Wrote ${rows} readings of session ${session.id} to ${options.output}.`)
        return
      }
      if (options.out === undefined) throw new CliError('--user needs --out <dir>.')
      if (options.output !== undefined) throw new CliError('-o is for one session; --user exports go to --out <dir>.')
      const userId = positiveInt(options.user as string, '--user')
      await requireUser(pool, userId)
      await mkdir(options.out, { recursive: true })
      let count = 0
      for await (const session of allSessionsOf(pool, userId)) {
        const file = path.join(options.out, `session-${session.id}.csv`)
        const rows = await exportSession(pool, session, { file, progress: showProgress(false), logger })
        console.error(`Wrote ${rows} readings of session ${session.id} to ${file}.`)
        count++
      }
      console.error(count ? `Exported ${count} sessions of user ${userId}.` : `User ${userId} has no sessions.`)
    }))

  sessions.command('purge')
    .description('delete ended sessions flagged as recorded incorrectly, with their readings and batch records')
    .requiredOption('--flagged', 'required: purge only flagged sessions')
    .option('--older-than <duration>', 'only sessions flagged at least this long ago, e.g. 30d, 12h')
    .option('--yes', 'do not ask for confirmation')
    .option('--json', 'print what was deleted as JSON (needs --yes: nothing is asked)')
    .action((options: { flagged: true, olderThan?: string, yes?: boolean, json?: boolean }) => withContext(async ({ pool }) => {
      const seconds = options.olderThan === undefined ? undefined : parseDuration(options.olderThan, '--older-than')
      if (options.json && !options.yes) throw new CliError('--json needs --yes: a JSON run asks nothing.')
      const candidates = await findPurgeableSessions(pool, seconds)
      if (options.json) {
        const deleted = await purgeFlaggedSessions(pool, candidates.map(s => s.id))
        console.log(JSON.stringify({ candidates: candidates.map(s => s.id), ...deleted }))
        return
      }
      if (candidates.length === 0) {
        console.log('No flagged sessions to purge.')
        return
      }
      const readings = candidates.reduce((sum, s) => sum + s.totalSensorReadingsWritten, 0)
      console.log(formatTable(candidates.map(s => ({ ...summaryRow(s), flaggedAt: s.flaggedAt }))))
      const question = `Delete these ${candidates.length} sessions and their ${readings} readings? [y/N] `
      if (!options.yes && !await confirm(question)) {
        console.log('Nothing deleted.')
        return
      }
      const deleted = await purgeFlaggedSessions(pool, candidates.map(s => s.id))
      console.log(`Deleted ${deleted.sessions} sessions, ${deleted.readings} readings and ${deleted.batches} batch records.`)
      const kept = candidates.length - deleted.sessions
      if (kept) console.log(`${kept} sessions were unflagged or deleted meanwhile and were left alone.`)
    }))
}
