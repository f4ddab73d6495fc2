import closeWithGrace from 'close-with-grace'
import type { FastifyInstance } from 'fastify'
import { buildApp } from './app.js'
import { ConfigError, loadConfig, type Config } from './config.js'
import { resolveDatabase, type ResolvedDatabase } from './db/startup/resolve-database.js'
import { createLogger } from './logger.js'

let config: Config
try {
  config = loadConfig()
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  console.error(err.message)
  process.exit(1)
}

const bootLogger = createLogger(config.logLevel)
let database: ResolvedDatabase
try {
  database = await resolveDatabase(config, bootLogger)
} catch (err) {
  bootLogger.fatal({ err }, 'The database could not be reached or started.')
  process.exit(1)
}

let app: FastifyInstance
try {
  app = await buildApp({ ...config, databaseUrl: database.connectionString }, { embeddedDatabase: database.embedded })
} catch (err) {
  bootLogger.fatal({ err }, 'The service could not start.')
  await database.stop()
  process.exit(1)
}

// app.close() stops accepting connections, answers requests on kept-alive
// connections with 503, waits for in-flight requests and runs every onClose
// hook (the ingest drain, then the pool). A second signal, an error during
// shutdown, or SHUTDOWN_GRACE_MS passing exits with 1 instead of 0.
const shutdown = closeWithGrace({
  delay: config.shutdownGraceMs,
  logger: app.log,
  onTimeout: delay => app.log.error({ delay }, 'Shutdown took longer than SHUTDOWN_GRACE_MS; exiting with 1.'),
  onSecondSignal: signal => app.log.error({ signal }, 'Second signal during shutdown; exiting with 1.'),
  onSecondError: err => app.log.error({ err }, 'Error during shutdown; exiting with 1.')
}, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'Shutting down after an unexpected error.')
  else app.log.info({ signal, graceMs: config.shutdownGraceMs }, 'Shutting down.')
  await app.close()
  await database.stop()
  app.log.info('Shut down.')
})

try {
  await app.listen({ host: config.host, port: config.port })
} catch (err) {
  app.log.fatal({ err }, 'The service could not listen.')
  shutdown.uninstall()
  await app.close()
  await database.stop()
  process.exit(1)
}
