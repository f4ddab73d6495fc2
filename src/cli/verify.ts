import type { Command } from 'commander'
import { ConfigError } from '../config.js'
import { auditScopedSessions, isStatementTimeout, withAuditClient, type AuditScope } from '../db/integrity-audit.js'
import { findSessionById } from '../db/sessions/sessions-repository.js'
import { findUserById } from '../db/users-repository.js'
import { describeMismatch, findMismatches, type IntegrityMismatch } from '../reports/integrity-checks.js'
import { openCliContext, type CliContext } from './context.js'
import { CliError } from './run.js'
import { positiveInt } from './options.js'

/** Exit codes of `verify`, for scripts and cron jobs. */
export const VERIFY_EXIT = { clean: 0, mismatch: 1, error: 2 } as const

interface VerifyOptions {
  session?: string
  user?: string
  from?: string
  to?: string
  chunkSize: string
  statementTimeout: string
  json?: boolean
}

/** The outcome `--json` prints. */
export interface VerifyResult {
  clean: boolean
  sessionsChecked: number
  mismatchedSessions: number[]
  mismatches: IntegrityMismatch[]
  elapsedMs: number
}

function parseTime (value: string | undefined, name: string): Date | undefined {
  if (value === undefined) return undefined
  const time = /^\d{4}-\d{2}-\d{2}/.test(value) ? new Date(value) : undefined
  if (!time || Number.isNaN(time.getTime())) throw new CliError(`${name} must be an ISO-8601 date or time, e.g. 2024-06-01 or 2024-06-01T09:00:00Z, got "${value}".`)
  return time
}

function parseScope (options: VerifyOptions): AuditScope {
  const scope: AuditScope = {
    sessionId: options.session === undefined ? undefined : positiveInt(options.session, '--session'),
    userId: options.user === undefined ? undefined : positiveInt(options.user, '--user'),
    from: parseTime(options.from, '--from'),
    to: parseTime(options.to, '--to')
  }
  if (scope.sessionId !== undefined && (scope.userId !== undefined || scope.from || scope.to)) {
    throw new CliError('--session checks one session; give it without --user, --from or --to.')
  }
  if (scope.from && scope.to && scope.from >= scope.to) throw new CliError('--from must be before --to.')
  return scope
}

/** An unknown id is a mistake in the command, not a clean database. */
async function requireScopeExists (context: CliContext, scope: AuditScope): Promise<void> {
  if (scope.sessionId !== undefined && !await findSessionById(context.pool, scope.sessionId)) {
    throw new CliError(`Session ${scope.sessionId} does not exist.`)
  }
  if (scope.userId !== undefined && !await findUserById(context.pool, scope.userId)) {
    throw new CliError(`User ${scope.userId} does not exist.`)
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`

/** A progress line, rewritten in place, only for a person watching stderr. */
function progressLine (): { update: (text: string) => void, done: () => void } {
  if (!process.stderr.isTTY) return { update: () => {}, done: () => {} }
  let shown = false
  return {
    update: text => {
      process.stderr.write(`\r\x1b[K${text}`)
      shown = true
    },
    done: () => { if (shown) process.stderr.write('\r\x1b[K') }
  }
}

async function audit (context: CliContext, scope: AuditScope, chunkSize: number, timeoutMs: number, json: boolean): Promise<VerifyResult> {
  const started = performance.now()
  const mismatches: IntegrityMismatch[] = []
  const mismatchedSessions: number[] = []
  const progress = progressLine()
  let checked = 0
  let afterId = 0
  try {
    await withAuditClient(context.pool, timeoutMs, async client => {
      for (;;) {
        let chunk
        try {
          chunk = await auditScopedSessions(client, scope, afterId, chunkSize)
        } catch (err) {
          if (!isStatementTimeout(err)) throw err
          throw new CliError(`Checking the ${chunkSize} sessions after id ${afterId} took longer than ${timeoutMs} ms; ` +
            'run again with a larger --statement-timeout or a smaller --chunk-size.')
        }
        for (const facts of chunk) {
          const found = findMismatches(facts)
          if (found.length === 0) continue
          mismatchedSessions.push(facts.sessionId)
          mismatches.push(...found)
          // Printed as found: a long run shows its findings before it ends.
          if (!json) {
            progress.done()
            for (const mismatch of found) console.log(describeMismatch(mismatch))
          }
        }
        checked += chunk.length
        const last = chunk.at(-1)
        if (!last || chunk.length < chunkSize) return
        afterId = last.sessionId
        progress.update(`verify: ${count(checked, 'session')} checked (up to id ${afterId}), ${count(mismatches.length, 'mismatch', 'mismatches')}, ${seconds(performance.now() - started)}`)
      }
    })
  } finally {
    progress.done()
  }
  return { clean: mismatches.length === 0, sessionsChecked: checked, mismatchedSessions, mismatches, elapsedMs: Math.round(performance.now() - started) }
}

const count = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`

function summaryLine (result: VerifyResult): string {
  const found = result.clean
    ? 'no mismatches'
    : `${count(result.mismatches.length, 'mismatch', 'mismatches')} in ${count(result.mismatchedSessions.length, 'session')}`
  return `Checked ${count(result.sessionsChecked, 'session')} in ${seconds(result.elapsedMs)}: ${found}.`
}

/** pg's connection failures can be an AggregateError with an empty message (one error per address tried). */
function reasonOf (err: unknown): string {
  const { message, code } = err as { message?: unknown, code?: unknown }
  if (typeof message === 'string' && message !== '') return message
  return typeof code === 'string' ? code : String(err)
}

async function verify (options: VerifyOptions): Promise<void> {
  let context: CliContext | undefined
  try {
    const scope = parseScope(options)
    const chunkSize = positiveInt(options.chunkSize, '--chunk-size')
    const timeoutMs = positiveInt(options.statementTimeout, '--statement-timeout')
    context = await openCliContext()
    await requireScopeExists(context, scope)
    const result = await audit(context, scope, chunkSize, timeoutMs, options.json ?? false)
    console.log(options.json ? JSON.stringify(result) : summaryLine(result))
    process.exitCode = result.clean ? VERIFY_EXIT.clean : VERIFY_EXIT.mismatch
  } catch (err) {
    // Usage and connection errors alike: the audit could not say whether the data is sound.
    const known = err instanceof CliError || err instanceof ConfigError
    console.error(known ? `error: ${err.message}` : `error: the audit could not complete: ${reasonOf(err)}`)
    process.exitCode = VERIFY_EXIT.error
  } finally {
    await context?.close()
  }
}

export function registerVerifyCommand (program: Command): void {
  program.command('verify')
    .description('check every session\'s counts: written total, batch ledger, readings rows and stored report agree; ' +
      'exit 0 when clean, 1 on any mismatch, 2 on a usage or database error')
    .option('--session <id>', 'only this session')
    .option('--user <id>', 'only this user\'s sessions')
    .option('--from <time>', 'only sessions created at or after this time (ISO-8601)')
    .option('--to <time>', 'only sessions created before this time (ISO-8601)')
    .option('--chunk-size <n>', 'sessions checked by one query', '500')
    .option('--statement-timeout <ms>', 'longest one chunk\'s query may take', '60000')
    .option('--json', 'print the result as JSON')
    // Commander exits with 1 on a bad option, which here means "mismatch found".
    .exitOverride(err => process.exit(err.exitCode === 0 ? 0 : VERIFY_EXIT.error))
    .action((options: VerifyOptions) => verify(options))
}
