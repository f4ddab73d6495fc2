import type { ReportObserver } from './reports/report-store.js'
import type { IngestObserver } from './ingest/types.js'
import type { Metrics } from './metrics.js'
import type { IntegrityAuditObserver } from './plugins/integrity-audit.js'
import type { PushObserver } from './recording/push-observer.js'
import type { MqttSubscriberObserver } from './transports/mqtt-subscriber.js'
import type { RecordingObserver } from './recording/observer.js'
import type { SocketObserver } from './recording/recording-sockets.js'

/** Feeds the ingest pipeline's events into the metrics. */
export function ingestMetricsObserver (metrics: Metrics): IngestObserver {
  return {
    groupCommitted: ({ rows, seconds }) => {
      metrics.commitDuration.observe(seconds)
      metrics.rowsPerCopy.observe(rows)
    },
    batchWritten: readings => {
      metrics.batchesWritten.inc()
      metrics.readingsWritten.inc(readings)
    },
    batchReplayed: () => metrics.batchesReplayed.inc(),
    batchConflicted: () => metrics.batchConflicts.inc()
  }
}

/** Feeds the recording sockets' session and rejection events into the metrics. */
export function recordingMetricsObserver (metrics: Metrics): RecordingObserver & SocketObserver {
  return {
    socketOpened: () => metrics.openSockets.inc(),
    socketClosed: () => metrics.openSockets.dec(),
    sessionCreated: () => metrics.sessionsCreated.inc(),
    sessionEnded: reason => metrics.sessionsEnded.inc({ reason }),
    batchRejected: reason => metrics.batchesRejected.inc({ reason })
  }
}

/** Feeds completeness reports computed (and failed) into the metrics. */
export function reportMetricsObserver (metrics: Metrics): ReportObserver {
  return {
    computed: ({ complete, seconds }) => {
      metrics.sessionReports.inc({ outcome: complete ? 'complete' : 'incomplete' })
      metrics.reportDuration.observe(seconds)
    },
    failed: () => metrics.sessionReports.inc({ outcome: 'failed' })
  }
}

/** Feeds the periodic integrity samples into the metrics. */
export function integrityAuditMetricsObserver (metrics: Metrics): IntegrityAuditObserver {
  return {
    sampled: ({ sessions, mismatches }) => {
      metrics.integritySessionsAudited.inc(sessions)
      metrics.integrityMismatches.set(mismatches)
    }
  }
}

/** Feeds the push transports' outcomes (HTTP push, MQTT) into the metrics. */
export function pushMetricsObserver (metrics: Metrics): PushObserver {
  return {
    messageHandled: (transport, outcome) => metrics.pushMessages.inc({ transport, outcome })
  }
}

/** Feeds the MQTT subscriber's connection and retries into the metrics. */
export function mqttMetricsObserver (metrics: Metrics): MqttSubscriberObserver {
  return {
    connectionChanged: connected => metrics.mqttConnected.set(connected ? 1 : 0),
    retried: reason => metrics.mqttRetries.inc({ reason })
  }
}
