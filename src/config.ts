import { hostname } from 'node:os'
import { z } from 'zod'

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max)
const flag = z.stringbool({ truthy: ['true', '1', 'yes', 'on'], falsy: ['false', '0', 'no', 'off'] })
const optionalText = z.string().trim().transform(value => value === '' ? undefined : value).optional()
// Fastify's trustProxy: true/false, a hop count, or a comma-separated list of addresses, CIDRs and proxy-addr names.
const trustProxy = z.string().trim().min(1).transform((value): boolean | string | ((address: string, hop: number) => boolean) => {
  if (/^(true|false)$/i.test(value)) return value.toLowerCase() === 'true'
  if (/^\d+$/.test(value)) {
    const hops = Number(value)
    return (_address, hop) => hop < hops
  }
  return value
})

/**
 * Every environment variable the service and the CLI read, with its default.
 * `.env.example` and the README list the same variables in the same order.
 */
export const envSchema = z.object({
  DATABASE_URL: optionalText.pipe(z.url().optional()),
  EMBEDDED_PG_DIR: z.string().min(1).default('.data/postgres'),
  EMBEDDED_PG_PORT: int(1, 65535).default(54329),
  DB_POOL_MAX: int(2, 500).default(20),
  MIGRATE_ON_START: flag.default(true),
  DB_CHECK_TIMEOUT_MS: int(50, 60_000).default(2000),

  HOST: z.string().min(1).default('0.0.0.0'),
  PORT: int(0, 65535).default(3000),
  TRUST_PROXY: trustProxy.default('loopback,linklocal,uniquelocal'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  COMMIT_SHA: z.string().min(1).default('unknown'),
  HTTP_REQUEST_TIMEOUT_MS: int(500, 600_000).default(30_000),

  ACCESS_TOKEN_TTL_SECONDS: int(60).default(7 * 24 * 3600),
  ALLOW_PUBLIC_KEY_LOGIN: flag.default(true),
  CHALLENGE_TTL_SECONDS: int(10, 3600).default(300),
  CHALLENGE_MAX_PENDING: int(1).default(10_000),
  AUTH_RATE_LIMIT_PER_MINUTE: int(1).default(30),
  METRICS_TOKEN: optionalText,

  SENSOR_READINGS_BATCH_SIZE: int(1, 100_000).default(375),
  SESSION_TTL_SECONDS: int(1).default(600),
  SESSION_REAPER_INTERVAL_MS: int(50, 60_000).default(1000),
  SESSION_METADATA_MAX_BYTES: int(2, 1_048_576).default(16_384),
  SESSION_REPORT_TIMEOUT_MS: int(100).default(30_000),
  INTEGRITY_AUDIT_INTERVAL_MS: int(0).default(300_000),

  EXPORT_MAX_PER_USER: int(1, 1000).default(2),
  EXPORT_POOL_MAX: int(1, 500).default(4),
  EXPORT_POOL_WAIT_MS: int(0, 60_000).default(2000),
  EXPORT_IDLE_TIMEOUT_MS: int(100).default(30_000),
  DATASET_PSEUDONYM_KEY: optionalText,

  WS_MAX_CONNECTIONS: int(1).default(5000),
  WS_MAX_CONNECTIONS_PER_USER: int(1).default(3),
  WS_MAX_PAYLOAD_BYTES: int(1024).default(1_048_576),
  WS_CREATE_SESSION_TIMEOUT_MS: int(100).default(30_000),
  WS_PING_INTERVAL_MS: int(100).default(30_000),
  WS_MAX_INFLIGHT_BATCHES: int(1, 1000).default(16),

  PUSH_MAX_READINGS: int(1, 100_000).default(5000),
  PUSH_MAX_INFLIGHT_PER_USER: int(1, 1000).default(4),
  MQTT_URL: optionalText.pipe(z.url({ protocol: /^(mqtts?|wss?)$/, error: 'an mqtt://, mqtts://, ws:// or wss:// URL' }).optional()),
  // The topic's last level is the ingest key, so the filter ends in a one-level wildcard.
  MQTT_TOPIC: z.string().regex(/^[^#$][^#]*\/\+$/, 'a topic filter ending in /+ (the ingest key level), without #').default('motion-ingest/+'),
  MQTT_CLIENT_ID: optionalText,
  MQTT_SHARE_GROUP: z.string().trim().regex(/^[^/+#]*$/, 'a name without /, + or #; empty for a plain subscription').default('motion-ingest'),
  MQTT_SESSION_EXPIRY_SECONDS: int(0, 4_294_967_295).default(3600),
  MQTT_MAX_INFLIGHT: int(1, 65_535).default(64),

  INGEST_WRITERS: int(1, 64).default(2),
  INGEST_MAX_ROWS_PER_COPY: int(1).default(100_000),
  INGEST_SPILL_READINGS: int(1).default(20_000),
  INGEST_MAX_BUFFERED_READINGS: int(1).default(200_000),
  INGEST_GROUP_TIMEOUT_MS: int(100).default(10_000),

  LIVE_MAX_STREAMS_PER_USER: int(1, 100).default(3),
  LIVE_MAX_STREAMS: int(1).default(500),

  SHUTDOWN_GRACE_MS: int(100).default(10_000)
})

export type Env = z.input<typeof envSchema>

function toConfig (env: z.output<typeof envSchema>) {
  return {
    databaseUrl: env.DATABASE_URL,
    embeddedPg: { dir: env.EMBEDDED_PG_DIR, port: env.EMBEDDED_PG_PORT },
    dbPoolMax: env.DB_POOL_MAX,
    migrateOnStart: env.MIGRATE_ON_START,
    dbCheckTimeoutMs: env.DB_CHECK_TIMEOUT_MS,
    host: env.HOST,
    port: env.PORT,
    trustProxy: env.TRUST_PROXY,
    logLevel: env.LOG_LEVEL,
    commitSha: env.COMMIT_SHA,
    httpRequestTimeoutMs: env.HTTP_REQUEST_TIMEOUT_MS,
    auth: {
      accessTokenTtlSeconds: env.ACCESS_TOKEN_TTL_SECONDS,
      allowPublicKeyLogin: env.ALLOW_PUBLIC_KEY_LOGIN,
      challengeTtlSeconds: env.CHALLENGE_TTL_SECONDS,
      maxPendingChallenges: env.CHALLENGE_MAX_PENDING,
      rateLimitPerMinute: env.AUTH_RATE_LIMIT_PER_MINUTE
    },
    metricsToken: env.METRICS_TOKEN,
    sessions: {
      batchSize: env.SENSOR_READINGS_BATCH_SIZE,
      ttlSeconds: env.SESSION_TTL_SECONDS,
      reaperIntervalMs: env.SESSION_REAPER_INTERVAL_MS,
      metadataMaxBytes: env.SESSION_METADATA_MAX_BYTES,
      reportTimeoutMs: env.SESSION_REPORT_TIMEOUT_MS
    },
    integrityAudit: { intervalMs: env.INTEGRITY_AUDIT_INTERVAL_MS },
    exports: {
      maxPerUser: env.EXPORT_MAX_PER_USER,
      poolMax: env.EXPORT_POOL_MAX,
      poolWaitMs: env.EXPORT_POOL_WAIT_MS,
      idleTimeoutMs: env.EXPORT_IDLE_TIMEOUT_MS
    },
    datasets: { pseudonymKey: env.DATASET_PSEUDONYM_KEY },
    ws: {
      maxConnections: env.WS_MAX_CONNECTIONS,
      maxConnectionsPerUser: env.WS_MAX_CONNECTIONS_PER_USER,
      maxPayloadBytes: env.WS_MAX_PAYLOAD_BYTES,
      createSessionTimeoutMs: env.WS_CREATE_SESSION_TIMEOUT_MS,
      pingIntervalMs: env.WS_PING_INTERVAL_MS,
      maxInflightBatches: env.WS_MAX_INFLIGHT_BATCHES
    },
    push: {
      maxReadings: env.PUSH_MAX_READINGS,
      maxInflightPerUser: env.PUSH_MAX_INFLIGHT_PER_USER
    },
    mqtt: {
      url: env.MQTT_URL,
      topic: env.MQTT_TOPIC,
      // Stable across restarts of one instance, so its broker session (and the messages queued in it) is found again.
      clientId: env.MQTT_CLIENT_ID ?? `motion-ingest-${hostname()}-${env.PORT}`,
      shareGroup: env.MQTT_SHARE_GROUP === '' ? undefined : env.MQTT_SHARE_GROUP,
      sessionExpirySeconds: env.MQTT_SESSION_EXPIRY_SECONDS,
      maxInflight: env.MQTT_MAX_INFLIGHT
    },
    ingest: {
      writers: env.INGEST_WRITERS,
      maxRowsPerCopy: env.INGEST_MAX_ROWS_PER_COPY,
      spillReadings: env.INGEST_SPILL_READINGS,
      maxBufferedReadings: env.INGEST_MAX_BUFFERED_READINGS,
      groupTimeoutMs: env.INGEST_GROUP_TIMEOUT_MS
    },
    live: {
      maxStreamsPerUser: env.LIVE_MAX_STREAMS_PER_USER,
      maxStreams: env.LIVE_MAX_STREAMS
    },
    shutdownGraceMs: env.SHUTDOWN_GRACE_MS
  }
}

export type Config = ReturnType<typeof toConfig>

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID'
}

/**
 * Parses the environment once. A bad value throws a ConfigError whose message
 * is one line naming each offending variable, so start-up fails legibly.
 */
export function loadConfig (env: Record<string, string | undefined> = process.env): Config {
  const parsed = envSchema.safeParse(env)
  if (!parsed.success) {
    const problems = parsed.error.issues.map(issue => {
      const name = String(issue.path[0] ?? '?')
      return `${name}=${JSON.stringify(env[name] ?? '')}: ${issue.message}`
    })
    throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`)
  }
  return toConfig(parsed.data)
}
