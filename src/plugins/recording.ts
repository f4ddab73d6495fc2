import fp from 'fastify-plugin'
import websocket from '@fastify/websocket'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../config.js'
import { PgCopySink } from '../db/readings/pg-copy-sink.js'
import { IngestPipeline } from '../ingest/pipeline.js'
import { SessionLabels } from '../labels/session-labels.js'
import type { IngestObserver } from '../ingest/types.js'
import { BatchIntake } from '../recording/batch-intake.js'
import type { RecordingObserver } from '../recording/observer.js'
import { PushRecorder } from '../recording/push-recorder.js'
import { RecordingSessions } from '../recording/recording-sessions.js'
import { RecordingSockets, selectSubprotocol, type SocketObserver } from '../recording/recording-sockets.js'
import { startSessionReaper } from '../recording/session-reaper.js'
import { SessionRegistry } from '../recording/session-registry.js'

declare module 'fastify' {
  interface FastifyInstance {
    recording: {
      /** The session lifecycle, for every transport and the admin routes. */
      sessions: RecordingSessions
      /** The one way a batch enters ingest. */
      intake: BatchIntake
      /** This instance's recording sockets. */
      sockets: RecordingSockets
      /** Push clients' messages (Sensor Logger over HTTP push and MQTT). */
      push: PushRecorder
      pipeline: IngestPipeline
    }
  }
}

export interface RecordingPluginOptions {
  sessions: Pick<Config['sessions'], 'batchSize' | 'ttlSeconds' | 'metadataMaxBytes' | 'reaperIntervalMs'>
  ws: Pick<Config['ws'], 'maxConnections' | 'maxConnectionsPerUser' | 'maxPayloadBytes' | 'createSessionTimeoutMs' | 'pingIntervalMs' | 'maxInflightBatches'>
  ingest: Config['ingest']
  push: Config['push']
  ingestObserver?: IngestObserver
  recordingObserver?: RecordingObserver & SocketObserver
}

/** A peer that lets this much unsent data pile up is not reading its socket. */
const MAX_SEND_BUFFER_BYTES = 4 * 1024 * 1024

function checkOptions ({ sessions, ws, ingest, push }: RecordingPluginOptions): void {
  const numbers = { ...sessions, ...ws, ...ingest, ...push }
  for (const [name, value] of Object.entries(numbers)) {
    if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`recording plugin: ${name} must be a positive integer, got ${String(value)}`)
  }
}

/**
 * The recording core (sessions, batch intake, ingest pipeline, reaper) and
 * the WebSocket transport's sockets. Transports (routes/ws.ts, …) are thin
 * adapters over `fastify.recording`.
 */
async function recordingPlugin (fastify: FastifyInstance, options: RecordingPluginOptions) {
  checkOptions(options)
  const { sessions: sessionSettings, ws, ingest, push, ingestObserver, recordingObserver } = options
  const log = fastify.log.child({ component: 'recording' })
  const pipeline = new IngestPipeline({
    sinks: Array.from({ length: ingest.writers }, () => new PgCopySink(fastify.db, ingest.groupTimeoutMs)),
    maxRowsPerGroup: ingest.maxRowsPerCopy,
    spillReadings: ingest.spillReadings,
    maxBufferedReadings: ingest.maxBufferedReadings,
    log,
    observer: ingestObserver
  })
  const registry = new SessionRegistry()
  const sessions = new RecordingSessions({
    db: fastify.db,
    reporter: fastify.reports,
    registry,
    ttlSeconds: sessionSettings.ttlSeconds,
    metadataMaxBytes: sessionSettings.metadataMaxBytes,
    observer: recordingObserver
  })
  const intake = new BatchIntake(pipeline, recordingObserver)
  const sockets = new RecordingSockets({
    maxConnections: ws.maxConnections,
    maxConnectionsPerUser: ws.maxConnectionsPerUser,
    pingIntervalMs: ws.pingIntervalMs,
    observer: recordingObserver,
    connection: {
      sessions,
      intake,
      registry,
      log,
      labels: new SessionLabels(fastify.db),
      settings: {
        batchSize: sessionSettings.batchSize,
        maxInflightBatches: ws.maxInflightBatches,
        createSessionTimeoutMs: ws.createSessionTimeoutMs,
        maxSendBufferBytes: MAX_SEND_BUFFER_BYTES
      }
    }
  })
  const reaper = startSessionReaper({ sessions, reporter: fastify.reports, intervalMs: sessionSettings.reaperIntervalMs, log })
  const pushRecorder = new PushRecorder({
    db: fastify.db,
    sessions,
    intake,
    maxReadingsPerMessage: push.maxReadings,
    maxInflightPerUser: push.maxInflightPerUser
  })
  fastify.decorate('recording', { sessions, intake, sockets, push: pushRecorder, pipeline })

  await fastify.register(websocket, {
    options: { maxPayload: ws.maxPayloadBytes, handleProtocols: selectSubprotocol },
    preClose: async function () {
      await sockets.closeAll()
      fastify.websocketServer.close()
    }
  })

  fastify.addHook('onClose', async () => {
    await reaper.stop()
    await pipeline.close()
  })
}

export default fp(recordingPlugin, { name: 'recording', dependencies: ['db', 'reports'] })
