import fp from 'fastify-plugin'
import websocket from '@fastify/websocket'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../config.js'
import { PgCopySink } from '../db/pg-copy-sink.js'
import { IngestPipeline } from '../ingest/pipeline.js'
import type { IngestObserver } from '../ingest/types.js'
import { CLOSE, type RecordingConnection, type RecordingDeps, type RecordingObserver } from '../recording/connection.js'
import { startSessionReaper } from '../recording/session-reaper.js'
import { SessionRegistry } from '../recording/session-registry.js'

declare module 'fastify' {
  interface FastifyInstance {
    recording: {
      deps: RecordingDeps
      pipeline: IngestPipeline
      registry: SessionRegistry
      /** This instance's open recording sockets. */
      connections: Set<RecordingConnection>
      connectionsPerUser: Map<number, number>
      /** Closes this instance's recording sockets of a user (1008), e.g. once the user is deleted. */
      disconnectUser: (userId: number, reason: string) => number
    }
  }
}

export interface RecordingPluginOptions {
  config: Config
  ingestObserver?: IngestObserver
  recordingObserver?: RecordingObserver
}

async function recordingPlugin (fastify: FastifyInstance, { config, ingestObserver, recordingObserver }: RecordingPluginOptions) {
  const log = fastify.log.child({ component: 'recording' })
  const pipeline = new IngestPipeline({
    sinks: Array.from({ length: config.ingest.writers }, () => new PgCopySink(fastify.db, config.ingest.groupTimeoutMs)),
    maxRowsPerGroup: config.ingest.maxRowsPerCopy,
    maxBufferedReadings: config.ingest.maxBufferedReadings,
    log,
    observer: ingestObserver
  })
  const registry = new SessionRegistry()
  const connections = new Set<RecordingConnection>()
  const reaper = startSessionReaper({
    db: fastify.db,
    registry,
    intervalMs: config.sessions.reaperIntervalMs,
    reporter: fastify.reports,
    log,
    onExpired: count => { for (let i = 0; i < count; i++) recordingObserver?.sessionEnded?.('expired') }
  })
  const deps: RecordingDeps = {
    db: fastify.db,
    reporter: fastify.reports,
    pipeline,
    registry,
    log,
    observer: recordingObserver,
    settings: {
      batchSize: config.sessions.batchSize,
      ttlSeconds: config.sessions.ttlSeconds,
      metadataMaxBytes: config.sessions.metadataMaxBytes,
      maxInflightBatches: config.ws.maxInflightBatches,
      createSessionTimeoutMs: config.ws.createSessionTimeoutMs,
      maxSendBufferBytes: 4 * 1024 * 1024
    }
  }
  // Tokens are checked at the upgrade only, so a socket outlives its user's deletion unless closed.
  function disconnectUser (userId: number, reason: string): number {
    let closed = 0
    for (const connection of connections) {
      if (connection.userId !== userId) continue
      connection.close(CLOSE.policy, reason)
      closed++
    }
    return closed
  }
  fastify.decorate('recording', { deps, pipeline, registry, connections, connectionsPerUser: new Map(), disconnectUser })

  await fastify.register(websocket, {
    options: { maxPayload: config.ws.maxPayloadBytes },
    // Shutdown: stop reading every socket, let batches already received commit and be
    // acknowledged, then say goodbye with 1001 so phones reconnect elsewhere.
    preClose: async function () {
      await Promise.all([...connections].map(connection => connection.drain()))
      for (const connection of connections) connection.close(CLOSE.goingAway, 'server shutting down')
      fastify.websocketServer.close()
    }
  })

  const pingTimer = setInterval(() => {
    for (const socket of fastify.websocketServer.clients) {
      const tracked = socket as typeof socket & { missedPong?: boolean }
      if (tracked.missedPong) {
        socket.terminate()
        continue
      }
      tracked.missedPong = true
      socket.ping()
    }
  }, config.ws.pingIntervalMs)
  pingTimer.unref()

  fastify.addHook('onClose', async () => {
    clearInterval(pingTimer)
    await reaper.stop()
    await pipeline.close()
  })
}

export default fp(recordingPlugin, { name: 'recording', dependencies: ['db', 'reports'] })
