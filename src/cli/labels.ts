import type { Command } from 'commander'
import type { z } from 'zod'
import { formatMicros } from '../schemas/timestamps.js'
import { toLabelView, toVocabularyView } from '../labels/label-view.js'
import { SessionLabels } from '../labels/session-labels.js'
import { createLabelBody, createVocabularyBody, labelName } from '../schemas/labels.js'
import { CliError, withContext } from './run.js'
import { formatTable } from './table.js'
import { positiveInt } from './options.js'

/** The zod issues of a command's input as lines naming the option. */
function invalid (error: z.ZodError, options: Record<string, string>, whole = 'input'): CliError {
  return new CliError(error.issues.map(issue => `${issue.path.length ? options[String(issue.path[0])] ?? whole : whole}: ${issue.message}`).join('\n'))
}

/**
 * `motion-ingest labels list|add|delete <session>` and `motion-ingest
 * vocabulary list|add|remove`: the same rules as the HTTP routes
 * (docs/labels.md). Labels added here have no creator (createdBy null).
 */
export function registerLabelCommands (program: Command): void {
  const labels = program.command('labels').description('interval labels of a session (docs/labels.md)')

  labels.command('list <session>')
    .description('a session\'s labels in time order, and its default label from metadata.activity')
    .option('--json', 'print JSON')
    .action((session: string, options: { json?: boolean }) => withContext(async ({ pool }) => {
      const sessionId = positiveInt(session, 'session')
      const view = await new SessionLabels(pool).list(sessionId)
      if (!view) throw new CliError(`Session ${sessionId} does not exist.`)
      const items = view.labels.map(toLabelView)
      if (options.json) {
        console.log(JSON.stringify({ sessionId, defaultLabel: view.defaultLabel, unmatchedActivity: view.unmatchedActivity, labels: items }))
        return
      }
      if (items.length) {
        console.log(formatTable(items.map(({ id, startTime, endTime, label, note }) => ({ id, startTime, endTime: endTime ?? 'open', label, note }))))
      }
      console.log(`${items.length} ${items.length === 1 ? 'label' : 'labels'}; default label: ${view.defaultLabel ?? 'none'}` +
        (view.unmatchedActivity === null ? '' : ` (metadata.activity "${view.unmatchedActivity}" is not in the vocabulary)`))
    }))

  labels.command('add <session>')
    .description('label the interval [--start, --end) of a session')
    .requiredOption('--start <time>', 'ISO-8601 with offset, microseconds kept')
    .requiredOption('--end <time>', 'ISO-8601 with offset; exclusive')
    .requiredOption('--label <name>', 'a vocabulary name (motion-ingest vocabulary list)')
    .option('--note <text>', 'a free note')
    .option('--json', 'print the label as JSON')
    .action((session: string, options: { start: string, end: string, label: string, note?: string, json?: boolean }) => withContext(async ({ pool }) => {
      const sessionId = positiveInt(session, 'session')
      const parsed = createLabelBody.safeParse({ startTime: options.start, endTime: options.end, label: options.label, note: options.note })
      if (!parsed.success) throw invalid(parsed.error, { startTime: '--start', endTime: '--end', label: '--label', note: '--note' })
      const { startTime, endTime, label, note } = parsed.data
      const result = await new SessionLabels(pool).add(sessionId, null, { startUs: startTime, endUs: endTime, label, note: note ?? null })
      switch (result.status) {
        case 'session_not_found':
          throw new CliError(`Session ${sessionId} does not exist.`)
        case 'refused':
          throw new CliError(`${result.code}: ${result.message}`)
        case 'duplicate':
        case 'recorded': {
          const view = toLabelView(result.label)
          if (options.json) {
            console.log(JSON.stringify({ ...view, duplicate: result.status === 'duplicate' }))
          } else if (result.status === 'duplicate') {
            console.log(`Session ${sessionId} already has this label: ${view.id}.`)
          } else {
            const closed = result.closedLabelId === null ? '' : ` It closed open label ${result.closedLabelId} at ${formatMicros(result.label.startUs)}.`
            console.log(`Added label ${view.id} (${view.label}, ${view.startTime} to ${view.endTime ?? 'open'}) to session ${sessionId}.${closed}`)
          }
        }
      }
    }))

  labels.command('delete <session> <labelId>')
    .description('delete one label of a session')
    .action((session: string, labelId: string) => withContext(async ({ pool }) => {
      const sessionId = positiveInt(session, 'session')
      const id = positiveInt(labelId, 'labelId')
      if (!await new SessionLabels(pool).remove(sessionId, id)) throw new CliError(`Session ${sessionId} has no label ${id}.`)
      console.log(`Deleted label ${id} of session ${sessionId}.`)
    }))

  const vocabulary = program.command('vocabulary').description('the labels sessions may carry')

  vocabulary.command('list')
    .description('the vocabulary, by name')
    .option('--json', 'print JSON')
    .action((options: { json?: boolean }) => withContext(async ({ pool }) => {
      const items = (await new SessionLabels(pool).vocabulary()).map(toVocabularyView)
      if (options.json) {
        console.log(JSON.stringify({ items }))
        return
      }
      if (items.length) console.log(formatTable(items))
      console.log(`${items.length} ${items.length === 1 ? 'name' : 'names'}`)
    }))

  vocabulary.command('add <name>')
    .description('add a name (stored in lower case)')
    .option('--description <text>', 'what the label means')
    .action((name: string, options: { description?: string }) => withContext(async ({ pool }) => {
      const parsed = createVocabularyBody.safeParse({ name, description: options.description })
      if (!parsed.success) throw invalid(parsed.error, { name: 'name', description: '--description' })
      const result = await new SessionLabels(pool).addToVocabulary(parsed.data.name, parsed.data.description ?? null)
      switch (result.status) {
        case 'exists':
          throw new CliError(`"${parsed.data.name}" is in the vocabulary already.`)
        case 'full':
          throw new CliError(`The vocabulary holds ${result.limit} names, the most it may; remove one first.`)
        case 'added':
          console.log(`Added "${result.entry.name}" to the vocabulary.`)
      }
    }))

  vocabulary.command('remove <name>')
    .description('remove a name no label carries')
    .action((name: string) => withContext(async ({ pool }) => {
      const parsed = labelName.safeParse(name)
      if (!parsed.success) throw invalid(parsed.error, {}, 'name')
      switch (await new SessionLabels(pool).removeFromVocabulary(parsed.data)) {
        case 'not_found':
          throw new CliError(`"${parsed.data}" is not in the vocabulary.`)
        case 'in_use':
          throw new CliError(`Labels carry "${parsed.data}"; change or delete them first.`)
        case 'removed':
          console.log(`Removed "${parsed.data}" from the vocabulary.`)
      }
    }))
}
