import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { LiveChannel } from '../db/live-channel.js'
import type { IngestObserver } from '../ingest/types.js'
import { LiveHub } from '../live/live-hub.js'
import { liveIngestObserver } from '../live/live-observer.js'

declare module 'fastify' {
  interface FastifyInstance {
    live: {
      /** This instance's live streams. */
      hub: LiveHub
      /** The LISTEN/NOTIFY connection shared by every instance's live view. */
      channel: LiveChannel
      /** Announces committed batches; the recording plugin's pipeline reports to it. */
      ingestObserver: IngestObserver
    }
  }
}

export interface LivePluginOptions {
  connectionString: string
  maxStreamsPerUser: number
  maxStreams: number
}

/**
 * The live view's plumbing: committed batches are announced with NOTIFY
 * after their transaction, every instance LISTENs on one connection of its
 * own, and hands each notice to its open streams (routes/live.ts).
 */
async function livePlugin (fastify: FastifyInstance, options: LivePluginOptions) {
  const hub = new LiveHub({ maxPerUser: options.maxStreamsPerUser, maxStreams: options.maxStreams })
  const channel = new LiveChannel({
    connectionString: options.connectionString,
    onNotice: notice => hub.deliver(notice),
    onStatus: listening => hub.status(listening),
    log: fastify.log
  })
  await channel.start()
  fastify.decorate('live', { hub, channel, ingestObserver: liveIngestObserver(batches => channel.publish(batches)) })
  // Streams never end by themselves: ended first, so that closing the server does not wait for them.
  fastify.addHook('preClose', async () => hub.endAll())
  fastify.addHook('onClose', async () => channel.close())
}

export default fp(livePlugin, { name: 'live', dependencies: ['db'] })
