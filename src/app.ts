import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod'
import type { Config } from './config.js'
import { loggerOptions } from './logger.js'
import authPlugin from './plugins/auth.js'
import dbPlugin from './plugins/db.js'
import errorHandlerPlugin from './plugins/error-handler.js'
import recordingPlugin from './plugins/recording.js'
import adminSessionsRoutes from './routes/admin-sessions.js'
import authRoutes from './routes/auth.js'
import healthRoutes from './routes/health.js'
import meRoutes from './routes/me.js'
import readingsRoutes from './routes/readings.js'
import sessionsRoutes from './routes/sessions.js'
import usersRoutes from './routes/users.js'
import wsRoutes from './routes/ws.js'

export interface BuildAppOptions {
  /** Pino options (or false); defaults to JSON at config.logLevel with secrets redacted. */
  logger?: FastifyServerOptions['logger']
  /** True when databaseUrl points at the embedded PostgreSQL the process started. */
  embeddedDatabase?: boolean
}

/**
 * Builds the whole service as a Fastify instance without listening, so the
 * server process and the tests construct it the same way.
 */
export async function buildApp (config: Config, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  if (!config.databaseUrl) throw new Error('buildApp needs config.databaseUrl (server.ts starts the embedded PostgreSQL when it is unset)')
  const startedAt = new Date()
  const app = Fastify({
    logger: options.logger ?? loggerOptions(config.logLevel),
    // Phones sit behind carrier NAT and load balancers; trust X-Forwarded-For from the proxy in front.
    trustProxy: true,
    bodyLimit: 1_048_576
  }).withTypeProvider<ZodTypeProvider>()
  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(serializerCompiler)

  await app.register(errorHandlerPlugin)
  await app.register(dbPlugin, {
    connectionString: config.databaseUrl,
    poolMax: config.dbPoolMax,
    migrateOnStart: config.migrateOnStart,
    embedded: options.embeddedDatabase ?? false
  })
  await app.register(authPlugin)
  await app.register(recordingPlugin, { config })

  await app.register(healthRoutes, {
    commitSha: config.commitSha,
    startedAt,
    batchSize: config.sessions.batchSize,
    sessionTtlSeconds: config.sessions.ttlSeconds
  })
  await app.register(authRoutes, config.auth)
  await app.register(usersRoutes)
  await app.register(meRoutes)
  await app.register(adminSessionsRoutes)
  await app.register(wsRoutes, { maxConnections: config.ws.maxConnections, maxConnectionsPerUser: config.ws.maxConnectionsPerUser })
  await app.register(sessionsRoutes, { metadataMaxBytes: config.sessions.metadataMaxBytes })
  await app.register(readingsRoutes)
  return app
}
