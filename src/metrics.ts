import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { BatchRejection } from './recording/observer.js'
import { PUSH_OUTCOMES, PUSH_TRANSPORTS } from './recording/push-observer.js'
import { DESTROY_REASONS } from './schemas/sessions.js'
import type { RetryReason } from './transports/mqtt-subscriber.js'

export const METRIC_PREFIX = 'motion_ingest_'

// A Record so that the compiler insists on every reason the recording path can report, and no other.
const REJECTIONS: Record<BatchRejection, true> = { batch_size: true, schema: true, session_not_found: true, storage_unavailable: true }

/**
 * Values of the `reason` label of batchesRejected. They start at zero so that
 * rate() and alerts see a series before the first rejection.
 */
export const BATCH_REJECT_REASONS = Object.keys(REJECTIONS) as BatchRejection[]

const MQTT_RETRIES: Record<RetryReason, true> = { too_many_in_flight: true, saturated: true, storage_unavailable: true, error: true }
/** Values of the `reason` label of mqttRetries. */
export const MQTT_RETRY_REASONS = Object.keys(MQTT_RETRIES) as RetryReason[]

export interface MetricsOptions {
  /** Counts active sessions for the activeSessions gauge; null when it cannot tell (database down). */
  countActiveSessions: () => Promise<number | null>
}

/** The service's metrics, each a prom-client object registered in `registry`. */
export interface Metrics {
  registry: Registry
  readingsWritten: Counter
  batchesWritten: Counter
  batchesRejected: Counter<'reason'>
  batchesReplayed: Counter
  batchConflicts: Counter
  openSockets: Gauge
  sessionsCreated: Counter
  sessionsEnded: Counter<'reason'>
  commitDuration: Histogram
  rowsPerCopy: Histogram
  activeSessions: Gauge
  sessionReports: Counter<'outcome'>
  reportDuration: Histogram
  integrityMismatches: Gauge
  integritySessionsAudited: Counter
  pushMessages: Counter<'transport' | 'outcome'>
  mqttConnected: Gauge
  mqttRetries: Counter<'reason'>
}

/**
 * A registry per call, never prom-client's global one: the tests build
 * several apps in one process, and two registrations of one name in the
 * global registry throw.
 */
export function createMetrics (options: MetricsOptions): Metrics {
  const registry = new Registry()
  // Process metrics keep their conventional names (process_*, nodejs_*) so stock dashboards work.
  collectDefaultMetrics({ register: registry })
  const registers = [registry]
  const name = (suffix: string) => METRIC_PREFIX + suffix

  const batchesRejected = new Counter({ name: name('batches_rejected_total'), help: 'Batches refused without writing a reading, by reason', labelNames: ['reason'] as const, registers })
  for (const reason of BATCH_REJECT_REASONS) batchesRejected.inc({ reason }, 0)
  const sessionsEnded = new Counter({ name: name('sessions_ended_total'), help: 'Sessions destroyed, by reason (client, expired, admin)', labelNames: ['reason'] as const, registers })
  for (const reason of DESTROY_REASONS) sessionsEnded.inc({ reason }, 0)
  const sessionReports = new Counter({ name: name('session_reports_total'), help: 'Completeness reports computed by this instance, by outcome (complete, incomplete, failed)', labelNames: ['outcome'] as const, registers })
  for (const outcome of ['complete', 'incomplete', 'failed']) sessionReports.inc({ outcome }, 0)
  const pushMessages = new Counter({ name: name('push_messages_total'), help: 'Push messages (Sensor Logger over HTTP or MQTT) handled, by transport and outcome', labelNames: ['transport', 'outcome'] as const, registers })
  for (const transport of PUSH_TRANSPORTS) for (const outcome of PUSH_OUTCOMES) pushMessages.inc({ transport, outcome }, 0)
  const mqttRetries = new Counter({ name: name('mqtt_retries_total'), help: 'MQTT messages tried again, unacknowledged meanwhile, by reason', labelNames: ['reason'] as const, registers })
  for (const reason of MQTT_RETRY_REASONS) mqttRetries.inc({ reason }, 0)

  return {
    registry,
    readingsWritten: new Counter({ name: name('readings_written_total'), help: 'Sensor readings durably committed', registers }),
    batchesWritten: new Counter({ name: name('batches_written_total'), help: 'Batches durably committed (first time only)', registers }),
    batchesRejected,
    batchesReplayed: new Counter({ name: name('batches_replayed_total'), help: 'Batches resent with an already written batch_id, acknowledged again without writing', registers }),
    batchConflicts: new Counter({ name: name('batch_conflicts_total'), help: 'Batches resent with an already written batch_id but other readings, refused as batch_conflict', registers }),
    openSockets: new Gauge({ name: name('open_sockets'), help: 'Recording WebSockets open on this instance', registers }),
    sessionsCreated: new Counter({ name: name('sessions_created_total'), help: 'Sessions created on this instance', registers }),
    sessionsEnded,
    commitDuration: new Histogram({
      name: name('commit_duration_seconds'),
      help: 'Time to COPY and commit one group of batches',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2],
      registers
    }),
    rowsPerCopy: new Histogram({
      name: name('rows_per_copy'),
      help: 'Readings written by one COPY (group commit)',
      buckets: [375, 1000, 2500, 5000, 10_000, 25_000, 50_000, 100_000],
      registers
    }),
    sessionReports,
    pushMessages,
    mqttConnected: new Gauge({ name: name('mqtt_connected'), help: '1 while this instance\'s MQTT subscriber is connected to the broker (0 also when MQTT is off)', registers }),
    mqttRetries,
    reportDuration: new Histogram({
      name: name('session_report_duration_seconds'),
      help: 'Time to compute and store one completeness report',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers
    }),
    integrityMismatches: new Gauge({
      name: name('integrity_mismatches'),
      help: 'Mismatches (counts of a session, its batch ledger, readings and report that disagree) found by the last integrity sample of this instance that audited any session',
      registers
    }),
    integritySessionsAudited: new Counter({ name: name('integrity_sessions_audited_total'), help: 'Ended sessions audited by this instance\'s periodic integrity sample', registers }),
    activeSessions: new Gauge({
      name: name('active_sessions'),
      help: 'Sessions not yet destroyed, across all instances (database count; NaN when the database does not answer)',
      registers,
      async collect () {
        this.set(await options.countActiveSessions() ?? Number.NaN)
      }
    })
  }
}

/** The current value of an unlabelled gauge or counter. */
export async function currentValue (metric: Gauge | Counter): Promise<number> {
  return (await metric.get()).values[0]?.value ?? 0
}
