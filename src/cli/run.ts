import { ConfigError } from '../config.js'
import { openCliContext, type CliContext } from './context.js'

/** An error meant for the person at the terminal: printed without a stack. */
export class CliError extends Error {}

/** Opens config and database for one command, runs it, closes, and sets the exit code. */
export async function withContext (fn: (context: CliContext) => Promise<void>): Promise<void> {
  let context: CliContext | undefined
  try {
    context = await openCliContext()
    await fn(context)
  } catch (err) {
    if (err instanceof CliError || err instanceof ConfigError) {
      console.error(`error: ${err.message}`)
    } else {
      console.error(err)
    }
    process.exitCode = 1
  } finally {
    await context?.close()
  }
}
