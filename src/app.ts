import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod'
import type { Config } from './config.js'
import { clientErrorHandler, frameworkErrors } from './framework-errors.js'
import { combineIngestObservers } from './ingest/observers.js'
import { PerUserExportLimit } from './export-limit.js'
import { httpServerFactory } from './http-server.js'
import { loggerOptions } from './logger.js'
import { ingestMetricsObserver, integrityAuditMetricsObserver, mqttMetricsObserver, pushMetricsObserver, recordingMetricsObserver, reportMetricsObserver } from './metrics-observers.js'
import authPlugin from './plugins/auth.js'
import authRateLimitPlugin from './plugins/auth-rate-limit.js'
import dbPlugin from './plugins/db.js'
import errorHandlerPlugin from './plugins/error-handler.js'
import integrityAuditPlugin from './plugins/integrity-audit.js'
import livePlugin from './plugins/live.js'
import metricsPlugin from './plugins/metrics.js'
import mqttPlugin from './plugins/mqtt.js'
import openapiPlugin from './plugins/openapi.js'
import reportsPlugin from './plugins/reports.js'
import recordingPlugin from './plugins/recording.js'
import securityHeadersPlugin from './plugins/security-headers.js'
import webPlugin from './plugins/web.js'
import adminSessionsRoutes from './routes/admin-sessions.js'
import authRoutes from './routes/auth.js'
import datasetsRoutes from './routes/datasets.js'
import healthRoutes from './routes/health.js'
import liveRoutes from './routes/live.js'
import ingestKeysRoutes from './routes/ingest-keys.js'
import labelsRoutes from './routes/labels.js'
import meRoutes from './routes/me.js'
import metricsRoutes from './routes/metrics.js'
import readingsRoutes from './routes/readings.js'
import readingsSummaryRoutes from './routes/readings-summary.js'
import sensorLoggerRoutes from './routes/sensor-logger.js'
import sessionExportRoutes from './routes/session-export.js'
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
    // Phones sit behind carrier NAT and load balancers; believe X-Forwarded-For only from the configured proxies.
    trustProxy: config.trustProxy,
    bodyLimit: 1_048_576,
    // Bounds slow-loris headers and uploads (408 at HTTP_REQUEST_TIMEOUT_MS); it covers receiving a request,
    // not streaming a response or an open WebSocket.
    serverFactory: httpServerFactory(config.httpRequestTimeoutMs),
    // Bad URLs and unparsable requests answer in the service's { error, message } shape too.
    frameworkErrors,
    clientErrorHandler,
    // During app.close() a request arriving on a kept-alive connection gets 503, so load balancers retry elsewhere.
    return503OnClosing: true,
    // JSON.parse only ever makes "__proto__" and "constructor" own keys, and every body is parsed
    // by a strict zod schema into a new object: the metadata schema refuses such keys with their
    // path, where Fastify's default would answer a misleading "Body is not valid JSON".
    onProtoPoisoning: 'ignore',
    onConstructorPoisoning: 'ignore'
  }).withTypeProvider<ZodTypeProvider>()
  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(serializerCompiler)

  await app.register(errorHandlerPlugin)
  await app.register(securityHeadersPlugin)
  // Both collect routes through onRoute hooks, so they come before any route.
  await app.register(openapiPlugin, {
    ws: {
      batchSize: config.sessions.batchSize,
      sessionTtlSeconds: config.sessions.ttlSeconds,
      maxPayloadBytes: config.ws.maxPayloadBytes,
      createSessionTimeoutMs: config.ws.createSessionTimeoutMs,
      pingIntervalMs: config.ws.pingIntervalMs,
      maxConnectionsPerUser: config.ws.maxConnectionsPerUser,
      maxInflightBatches: config.ws.maxInflightBatches
    }
  })
  await app.register(authRateLimitPlugin, { perMinute: config.auth.rateLimitPerMinute })
  await app.register(dbPlugin, {
    connectionString: config.databaseUrl,
    poolMax: config.dbPoolMax,
    migrateOnStart: config.migrateOnStart,
    embedded: options.embeddedDatabase ?? false,
    exportPoolMax: config.exports.poolMax,
    exportPoolWaitMs: config.exports.poolWaitMs
  })
  await app.register(metricsPlugin, { dbCheckTimeoutMs: config.dbCheckTimeoutMs })
  await app.register(authPlugin)
  await app.register(reportsPlugin, { timeoutMs: config.sessions.reportTimeoutMs, observer: reportMetricsObserver(app.metrics) })
  await app.register(livePlugin, { connectionString: config.databaseUrl, ...config.live })
  await app.register(recordingPlugin, {
    sessions: config.sessions,
    ws: config.ws,
    ingest: config.ingest,
    push: config.push,
    ingestObserver: combineIngestObservers(ingestMetricsObserver(app.metrics), app.live.ingestObserver),
    recordingObserver: recordingMetricsObserver(app.metrics)
  })
  await app.register(integrityAuditPlugin, {
    intervalMs: config.integrityAudit.intervalMs,
    // A sample counts about what a few reports read, so it gets a report's time.
    timeoutMs: config.sessions.reportTimeoutMs,
    observer: integrityAuditMetricsObserver(app.metrics)
  })
  // After the recording core: closing stops taking MQTT messages before the ingest pipeline drains.
  await app.register(mqttPlugin, { mqtt: config.mqtt, pushObserver: pushMetricsObserver(app.metrics), observer: mqttMetricsObserver(app.metrics) })

  await app.register(healthRoutes, {
    commitSha: config.commitSha,
    startedAt,
    batchSize: config.sessions.batchSize,
    sessionTtlSeconds: config.sessions.ttlSeconds,
    dbCheckTimeoutMs: config.dbCheckTimeoutMs
  })
  await app.register(metricsRoutes, { token: config.metricsToken })
  await app.register(authRoutes, config.auth)
  await app.register(usersRoutes)
  await app.register(meRoutes)
  await app.register(adminSessionsRoutes)
  await app.register(wsRoutes)
  await app.register(ingestKeysRoutes)
  await app.register(sensorLoggerRoutes, { observer: pushMetricsObserver(app.metrics) })
  await app.register(sessionsRoutes, { metadataMaxBytes: config.sessions.metadataMaxBytes })
  await app.register(labelsRoutes)
  // One count of each user's running downloads, whichever route serves them.
  const exportLimit = new PerUserExportLimit(config.exports.maxPerUser)
  await app.register(readingsRoutes, { exportLimit, exportIdleTimeoutMs: config.exports.idleTimeoutMs })
  await app.register(sessionExportRoutes, { exportLimit, exportIdleTimeoutMs: config.exports.idleTimeoutMs })
  await app.register(liveRoutes, { maxStreamSeconds: 900, heartbeatMs: 15_000 })
  // At most half the export connections go to dataset exports: CSV downloads keep the rest.
  await app.register(datasetsRoutes, {
    exportIdleTimeoutMs: config.exports.idleTimeoutMs,
    maxRunning: Math.max(1, Math.floor(config.exports.poolMax / 2)),
    pseudonymKey: config.datasets.pseudonymKey
  })
  await app.register(webPlugin)
  // A summary reads what a report reads, so it gets a report's time.
  await app.register(readingsSummaryRoutes, { maxPerUser: config.exports.maxPerUser, timeoutMs: config.sessions.reportTimeoutMs })
  return app
}
