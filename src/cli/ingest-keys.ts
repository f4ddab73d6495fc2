import type { Command } from 'commander'
import { listIngestKeys, mintIngestKey, revokeIngestKey } from '../db/ingest-keys-repository.js'
import { migrate } from '../db/startup/migrate.js'
import { createIngestKeyBody, MAX_INGEST_KEYS_PER_USER, sensorLoggerPushPath } from '../schemas/ingest-keys.js'
import { CliError, withContext } from './run.js'
import { formatTable } from './table.js'
import { positiveInt } from './options.js'

/** `motion-ingest ingest-keys create|list|revoke`: a beta tester's keys for Sensor Logger's HTTP push (docs/sensor-logger.md). */
export function registerIngestKeyCommands (program: Command): void {
  const keys = program.command('ingest-keys').description('manage the ingest keys push clients (Sensor Logger) record with')

  keys.command('create')
    .description('mint an ingest key for a beta tester; the key is printed this once')
    .requiredOption('--user <id>', 'the user\'s id')
    .option('--label <label>', 'a name for the phone or app the key is for')
    .option('--json', 'print the key as JSON')
    .action((options: { user: string, label?: string, json?: boolean }) => withContext(async ({ pool, logger }) => {
      const parsed = createIngestKeyBody.safeParse({ label: options.label })
      if (!parsed.success) throw new CliError(parsed.error.issues.map(issue => `--label: ${issue.message}`).join('\n'))
      const userId = positiveInt(options.user, '--user')
      await migrate(pool, logger)
      const result = await mintIngestKey(pool, userId, parsed.data.label ?? null, MAX_INGEST_KEYS_PER_USER)
      switch (result.status) {
        case 'user_not_found':
          throw new CliError(`User ${userId} does not exist.`)
        case 'not_a_recorder':
          throw new CliError(`User ${userId} is not a beta tester; only beta testers record.`)
        case 'limit_reached':
          throw new CliError(`User ${userId} already holds ${result.limit} ingest keys; revoke one first.`)
        case 'minted': {
          const { id, label, createdAt, key } = result.key
          const pushUrl = sensorLoggerPushPath(key)
          if (options.json) {
            console.log(JSON.stringify({ id, label, createdAt: createdAt.toISOString(), key, pushUrl }))
          } else {
            console.log(`Created ingest key ${id} for user ${userId}. It is shown only now:\n${key}\n` +
              `Sensor Logger's push URL: https://<this service's host>${pushUrl}`)
          }
        }
      }
    }))

  keys.command('list')
    .description('list a user\'s ingest keys (never their secrets)')
    .requiredOption('--user <id>', 'the user\'s id')
    .option('--json', 'print JSON')
    .action((options: { user: string, json?: boolean }) => withContext(async ({ pool }) => {
      const items = (await listIngestKeys(pool, positiveInt(options.user, '--user'))).map(key => ({
        id: key.id,
        label: key.label,
        createdAt: key.createdAt.toISOString(),
        lastUsedAt: key.lastUsedAt?.toISOString() ?? null
      }))
      if (options.json) {
        console.log(JSON.stringify({ items }))
        return
      }
      if (items.length) console.log(formatTable(items))
      console.log(`${items.length} ingest ${items.length === 1 ? 'key' : 'keys'}`)
    }))

  keys.command('revoke <keyId>')
    .description('revoke an ingest key: pushes with it are refused from now on')
    .requiredOption('--user <id>', 'the user holding the key')
    .action((keyId: string, options: { user: string }) => withContext(async ({ pool }) => {
      const userId = positiveInt(options.user, '--user')
      if (!await revokeIngestKey(pool, userId, positiveInt(keyId, 'keyId'))) throw new CliError(`User ${userId} holds no ingest key ${keyId}.`)
      console.log(`Revoked ingest key ${keyId} of user ${userId}.`)
    }))
}
