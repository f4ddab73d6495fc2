import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { migrate } from '../db/startup/migrate.js'
import { ExportPool } from '../db/export-pool.js'
import { createPool, type Pool } from '../db/pool.js'
import { detectStorage, type StorageInfo } from '../db/startup/storage.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: Pool
    /** The bounded pool readings exports run on, apart from db so they cannot starve ingest or auth. */
    exportPool: ExportPool
    storage: StorageInfo
  }
}

export interface DbPluginOptions {
  connectionString: string
  poolMax: number
  migrateOnStart: boolean
  embedded: boolean
  exportPoolMax: number
  exportPoolWaitMs: number
}

async function dbPlugin (fastify: FastifyInstance, options: DbPluginOptions) {
  const pool = createPool({ connectionString: options.connectionString, max: options.poolMax, logger: fastify.log })
  let storage: StorageInfo
  try {
    if (options.migrateOnStart) await migrate(pool, fastify.log)
    storage = await detectStorage(pool, options.embedded)
  } catch (err) {
    await pool.end()
    throw err
  }
  const exportPool = new ExportPool({
    connectionString: options.connectionString,
    max: options.exportPoolMax,
    waitMs: options.exportPoolWaitMs,
    logger: fastify.log
  })
  fastify.addHook('onClose', async () => { await Promise.all([pool.end(), exportPool.end()]) })
  fastify.log.info({ storage }, storage.readingsHypertable
    ? 'Readings are stored in a TimescaleDB hypertable.'
    : 'Readings are stored in a plain PostgreSQL table (TimescaleDB not available).')
  fastify.decorate('db', pool)
  fastify.decorate('exportPool', exportPool)
  fastify.decorate('storage', storage)
}

export default fp(dbPlugin, { name: 'db' })
