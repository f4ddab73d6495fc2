import type { Log } from '../logger.js'
import { loadConfig, type Config } from '../config.js'
import { createPool, type Pool } from '../db/pool.js'
import { resolveDatabase } from '../db/startup/resolve-database.js'
import { createLogger } from '../logger.js'

export interface CliContext {
  config: Config
  pool: Pool
  logger: Log
  close: () => Promise<void>
}

/** Config and a pool for one CLI command; the caller must close() it. */
export async function openCliContext (): Promise<CliContext> {
  const config = loadConfig()
  // The CLI's own output is for people; the logger only speaks up on warnings.
  const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel)
  const database = await resolveDatabase(config, logger)
  const pool = createPool({ connectionString: database.connectionString, max: 4, logger, applicationName: 'motion-ingest-cli' })
  return {
    config,
    pool,
    logger,
    close: async () => {
      await pool.end()
      await database.stop()
    }
  }
}
