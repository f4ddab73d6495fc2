import type { Env } from './config.js'

/** How one environment variable is documented. */
export interface VariableDoc {
  /** The heading it is listed under. */
  section: string
  /** What it does, in markdown (one line). */
  meaning: string
  /** For a variable unset by default: a value to show in .env.example (commented out). */
  example?: string
  /** Shown instead of the default value, where the default is computed. */
  defaultText?: string
}

/**
 * Every variable's documentation. Keyed by the schema's variables, so a
 * variable added to src/config.ts without a line here does not compile.
 * `npm run docs:config` writes docs/configuration.md and .env.example from it;
 * a test fails when they are out of date.
 */
export const CONFIG_DOCS: Record<keyof Env, VariableDoc> = {
  DATABASE_URL: { section: 'Database', defaultText: '(unset: embedded PostgreSQL)', meaning: 'PostgreSQL/TimescaleDB connection string; the database is created if missing', example: 'postgres://postgres@127.0.0.1:5432/motion_ingest' },
  EMBEDDED_PG_DIR: { section: 'Database', meaning: 'data folder of the embedded PostgreSQL' },
  EMBEDDED_PG_PORT: { section: 'Database', meaning: 'port of the embedded PostgreSQL' },
  DB_POOL_MAX: { section: 'Database', meaning: 'connections in the pool (each ingest writer holds one)' },
  MIGRATE_ON_START: { section: 'Database', meaning: 'apply pending migrations at start-up' },
  DB_CHECK_TIMEOUT_MS: { section: 'Database', meaning: 'how long `/health`, `/status` and the active-sessions metric wait for the database' },
  HOST: { section: 'HTTP', meaning: 'listen address' },
  PORT: { section: 'HTTP', meaning: 'listen port' },
  TRUST_PROXY: { section: 'HTTP', meaning: 'whose `X-Forwarded-For` to believe: `true`, `false`, a hop count, or a list of addresses/CIDRs' },
  LOG_LEVEL: { section: 'HTTP', meaning: '`fatal`…`trace`, or `silent`' },
  COMMIT_SHA: { section: 'HTTP', meaning: 'reported by `/status` (the Docker build sets it)' },
  HTTP_REQUEST_TIMEOUT_MS: { section: 'HTTP', meaning: 'a request\'s headers and body must arrive within this, else 408 and the connection closes; streamed responses and WebSockets are not limited' },
  ACCESS_TOKEN_TTL_SECONDS: { section: 'Authentication', meaning: 'lifetime of access tokens' },
  ALLOW_PUBLIC_KEY_LOGIN: { section: 'Authentication', meaning: 'allow the email + public key login' },
  CHALLENGE_TTL_SECONDS: { section: 'Authentication', meaning: 'how long a signature challenge can be answered' },
  CHALLENGE_MAX_PENDING: { section: 'Authentication', meaning: 'unused, unexpired sign-in challenges allowed over all keys; beyond it `/auth/challenge` answers 503' },
  AUTH_RATE_LIMIT_PER_MINUTE: { section: 'Authentication', meaning: 'requests per minute per IP on `/auth/*`' },
  METRICS_TOKEN: { section: 'Authentication', defaultText: '(unset: open)', meaning: 'bearer token required by `/metrics` when set' },
  SENSOR_READINGS_BATCH_SIZE: { section: 'Recording', meaning: 'readings in every batch' },
  SESSION_TTL_SECONDS: { section: 'Recording', meaning: 'a session ends this long after creation' },
  SESSION_REAPER_INTERVAL_MS: { section: 'Recording', meaning: 'how often each instance ends expired sessions and tells its phones' },
  SESSION_METADATA_MAX_BYTES: { section: 'Recording', meaning: 'largest session metadata (JSON bytes)' },
  SESSION_REPORT_TIMEOUT_MS: { section: 'Recording', meaning: 'longest each statement of a session\'s completeness report (and the wait for the session\'s lock) may take; a report that fails is retried by the reaper, 3 failed attempts in all' },
  INTEGRITY_AUDIT_INTERVAL_MS: { section: 'Recording', meaning: 'how often each instance audits the (up to 20) newest ended sessions it has not audited yet, as `motion-ingest verify` does (one statement, bounded by `SESSION_REPORT_TIMEOUT_MS`); `0` turns it off' },
  EXPORT_MAX_PER_USER: { section: 'Readings exports (CSV downloads and JSON pages)', meaning: 'readings exports (CSV downloads and JSON pages) one user may run at once per instance; over it 429 with `Retry-After`' },
  EXPORT_POOL_MAX: { section: 'Readings exports (CSV downloads and JSON pages)', meaning: 'connections of the pool exports run on, apart from `DB_POOL_MAX` (the service opens up to both)' },
  EXPORT_POOL_WAIT_MS: { section: 'Readings exports (CSV downloads and JSON pages)', meaning: 'how long an export waits for one of those connections; then 503 `EXPORTS_BUSY` with `Retry-After`' },
  EXPORT_IDLE_TIMEOUT_MS: { section: 'Readings exports (CSV downloads and JSON pages)', meaning: 'a CSV download whose client reads nothing for this long is aborted and its connection freed (logged as a warning)' },
  DATASET_PSEUDONYM_KEY: { section: 'Readings exports (CSV downloads and JSON pages)', defaultText: '(unset: a key per export)', meaning: 'secret key of the user pseudonyms in dataset exports (HMAC-SHA256 of the user id): the same pseudonym in every export; unset, each export draws its own key, so pseudonyms differ between exports', example: 'a-long-random-secret' },
  WS_MAX_CONNECTIONS: { section: 'WebSocket', meaning: 'recording sockets per instance; over it the upgrade gets 503' },
  WS_MAX_CONNECTIONS_PER_USER: { section: 'WebSocket', meaning: 'recording sockets per user per instance; over it 429' },
  WS_MAX_PAYLOAD_BYTES: { section: 'WebSocket', meaning: 'largest frame; larger closes the socket with 1009' },
  WS_CREATE_SESSION_TIMEOUT_MS: { section: 'WebSocket', meaning: 'a socket with no session after this is closed (1008)' },
  WS_PING_INTERVAL_MS: { section: 'WebSocket', meaning: 'keep-alive ping; a phone missing one pong is dropped' },
  WS_MAX_INFLIGHT_BATCHES: { section: 'WebSocket', meaning: 'unanswered batches per socket before the server stops reading it' },
  PUSH_MAX_READINGS: { section: 'Sensor Logger push (docs/sensor-logger.md)', meaning: 'most motion readings one Sensor Logger message may carry; more answers 413' },
  PUSH_MAX_INFLIGHT_PER_USER: { section: 'Sensor Logger push (docs/sensor-logger.md)', meaning: 'one user\'s push messages handled at once per instance; more answers 429' },
  MQTT_URL: { defaultText: '(unset: MQTT off)', section: 'Sensor Logger over MQTT (docs/sensor-logger.md, MQTT)', meaning: 'MQTT broker to take Sensor Logger messages from (`mqtt://`, `mqtts://`, `ws://`, `wss://`, credentials in the URL); unset: MQTT off', example: 'mqtt://motion-ingest:secret@127.0.0.1:1883' },
  MQTT_TOPIC: { section: 'Sensor Logger over MQTT (docs/sensor-logger.md, MQTT)', meaning: 'topic filter; the last level is the ingest key' },
  MQTT_CLIENT_ID: { section: 'Sensor Logger over MQTT (docs/sensor-logger.md, MQTT)', meaning: 'this instance\'s client id: its own, unguessable, the same after a restart', example: 'motion-ingest-a-7f3k2q', defaultText: '`motion-ingest-<hostname>-<PORT>`' },
  MQTT_SHARE_GROUP: { section: 'Sensor Logger over MQTT (docs/sensor-logger.md, MQTT)', meaning: 'shared-subscription group (one instance of the group receives each message); empty: plain subscription' },
  MQTT_SESSION_EXPIRY_SECONDS: { section: 'Sensor Logger over MQTT (docs/sensor-logger.md, MQTT)', meaning: 'how long the broker keeps the instance\'s session and queues its messages while it is away' },
  MQTT_MAX_INFLIGHT: { section: 'Sensor Logger over MQTT (docs/sensor-logger.md, MQTT)', meaning: 'MQTT messages handled at once per instance; also the Receive Maximum' },
  INGEST_WRITERS: { section: 'Ingest pipeline', meaning: 'COPY writers (database connections); the next one takes work when the previous has `INGEST_SPILL_READINGS` queued' },
  INGEST_MAX_ROWS_PER_COPY: { section: 'Ingest pipeline', meaning: 'most readings in one group-commit transaction' },
  INGEST_SPILL_READINGS: { section: 'Ingest pipeline', meaning: 'a writer with this many readings queued passes new sessions to the next writer: lower spreads work across database backends sooner (lower ack latency near one backend\'s limit), higher makes fewer, larger transactions' },
  INGEST_MAX_BUFFERED_READINGS: { section: 'Ingest pipeline', meaning: 'readings held in memory across all sockets before reading pauses' },
  INGEST_GROUP_TIMEOUT_MS: { section: 'Ingest pipeline', meaning: 'a group commit the database does not answer within this is failed: its phones hear `storage_unavailable` and resend' },
  LIVE_MAX_STREAMS_PER_USER: { section: 'Live view (web page)', meaning: '`GET /live` streams one user may hold open at once; past it 429 `TOO_MANY_STREAMS`' },
  LIVE_MAX_STREAMS: { section: 'Live view (web page)', meaning: '`GET /live` streams one instance holds; past it 503 `LIVE_BUSY` (a stream costs a socket, no database connection)' },
  SHUTDOWN_GRACE_MS: { section: 'Process', meaning: 'time allowed on SIGTERM to commit and acknowledge in-flight batches' }
}
