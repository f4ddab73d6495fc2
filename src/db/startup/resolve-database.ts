import type { Log } from '../../logger.js'
import type { Config } from '../../config.js'
import { embeddedConnectionString, embeddedPostgresIsRunning, startEmbeddedPostgres } from './embedded-postgres.js'
import { ensureDatabase } from './ensure-database.js'
import { redactConnectionString } from '../pool.js'

export interface ResolvedDatabase {
  connectionString: string
  embedded: boolean
  stop: () => Promise<void>
}

/**
 * DATABASE_URL when set; otherwise the embedded PostgreSQL under
 * EMBEDDED_PG_DIR. Either way the target database is created if missing.
 */
export async function resolveDatabase (config: Config, logger: Log): Promise<ResolvedDatabase> {
  if (config.databaseUrl) {
    if (await ensureDatabase(config.databaseUrl)) {
      logger.info({ database: redactConnectionString(config.databaseUrl) }, 'Created the database.')
    }
    return { connectionString: config.databaseUrl, embedded: false, stop: async () => {} }
  }
  if (await embeddedPostgresIsRunning(config.embeddedPg.port)) {
    const connectionString = embeddedConnectionString(config.embeddedPg.port)
    await ensureDatabase(connectionString)
    logger.warn({ port: config.embeddedPg.port }, 'DATABASE_URL is not set: using the EMBEDDED PostgreSQL another process started.')
    return { connectionString, embedded: true, stop: async () => {} }
  }
  logger.warn({ dir: config.embeddedPg.dir, port: config.embeddedPg.port },
    'DATABASE_URL is not set: starting the EMBEDDED PostgreSQL (no TimescaleDB). Fine for trying the service; set DATABASE_URL in production.')
  const embedded = await startEmbeddedPostgres(config.embeddedPg.dir, config.embeddedPg.port, logger)
  try {
    await ensureDatabase(embedded.connectionString)
  } catch (err) {
    await embedded.stop()
    throw err
  }
  return { connectionString: embedded.connectionString, embedded: true, stop: embedded.stop }
}
