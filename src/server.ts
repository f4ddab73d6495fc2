import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError, loadConfig, type Config } from './config.js'
import { resolveDatabase } from './db/resolve-database.js'
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
const database = await resolveDatabase(config, bootLogger)
let app
try {
  app = await buildApp({ ...config, databaseUrl: database.connectionString }, { embeddedDatabase: database.embedded })
} catch (err) {
  bootLogger.fatal({ err }, 'The service could not start.')
  await database.stop()
  process.exit(1)
}

closeWithGrace({ delay: config.shutdownGraceMs }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'Shutting down after an unexpected error.')
  else app.log.info({ signal }, 'Shutting down.')
  await app.close()
  await database.stop()
})

await app.listen({ host: config.host, port: config.port })
