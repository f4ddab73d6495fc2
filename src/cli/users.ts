import type { Command } from 'commander'
import { normalizePublicKey } from '../keys/public-key.js'
import { migrate } from '../db/startup/migrate.js'
import { deleteUser, insertUser, listUsers } from '../db/users-repository.js'
import { uniqueViolation } from '../db/errors.js'
import { createUserBody } from '../schemas/users.js'
import { CliError, withContext } from './run.js'
import { positiveInt } from './options.js'
import { formatTable } from './table.js'

export function registerUserCommands (program: Command): void {
  const users = program.command('users').description('manage users')

  users.command('create')
    .description('create a user (use --role ADMIN for the first admin)')
    .requiredOption('--name <name>', 'display name')
    .requiredOption('--email <email>', 'email, unique')
    .requiredOption('--public-key <key>', 'public key, unique')
    .option('--role <role>', 'ADMIN or BETATESTER', 'BETATESTER')
    .option('--json', 'print the user as JSON')
    .action((options: { name: string, email: string, publicKey: string, role: string, json?: boolean }) => withContext(async ({ pool, logger }) => {
      const parsed = createUserBody.safeParse({ name: options.name, email: options.email, publicKey: options.publicKey, role: options.role })
      if (!parsed.success) {
        throw new CliError(parsed.error.issues.map(issue => `--${String(issue.path[0]).replace(/[A-Z]/g, c => '-' + c.toLowerCase())}: ${issue.message}`).join('\n'))
      }
      await migrate(pool, logger)
      try {
        const user = await insertUser(pool, { ...parsed.data, publicKey: normalizePublicKey(parsed.data.publicKey) })
        console.log(options.json ? JSON.stringify(user) : `Created user ${user.id} (${user.email}, ${user.role}).`)
      } catch (err) {
        const constraint = uniqueViolation(err)
        if (constraint) throw new CliError(`A user with this ${constraint === 'users_email_key' ? 'email' : 'public key'} already exists.`)
        throw err
      }
    }))

  users.command('list')
    .description('list users')
    .option('--take <n>', 'how many', '100')
    .option('--skip <n>', 'how many to skip', '0')
    .option('--json', 'print JSON')
    .action((options: { take: string, skip: string, json?: boolean }) => withContext(async ({ pool }) => {
      const page = await listUsers(pool, positiveInt(options.take, '--take'), positiveInt(options.skip, '--skip', 0))
      if (options.json) {
        console.log(JSON.stringify(page))
        return
      }
      if (page.items.length) console.log(formatTable(page.items.map(u => ({ id: u.id, name: u.name, email: u.email, role: u.role, publicKey: u.publicKey, createdAt: u.createdAt }))))
      console.log(`${page.items.length} of ${page.total} users`)
    }))

  users.command('delete <id>')
    .description('delete a user with their sessions and readings')
    .action((id: string) => withContext(async ({ pool }) => {
      const deleted = await deleteUser(pool, positiveInt(id, 'id'))
      if (!deleted) throw new CliError(`User ${id} does not exist.`)
      console.log(`Deleted user ${id}: ${deleted.sessions} sessions, ${deleted.readings} readings, ${deleted.accessTokens} access tokens.`)
    }))
}
