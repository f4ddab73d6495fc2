import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { migrate } from '../db/migrate.js'
import { createPool, type Pool } from '../db/pool.js'
import { detectStorage, type StorageInfo } from '../db/storage.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: Pool
    storage: StorageInfo
  }
}

export interface DbPluginOptions {
  connectionString: string
  poolMax: number
  migrateOnStart: boolean
  embedded: boolean
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
  fastify.addHook('onClose', async () => { await pool.end() })
  fastify.log.info({ storage }, storage.readingsHypertable
    ? 'Readings are stored in a TimescaleDB hypertable.'
    : 'Readings are stored in a plain PostgreSQL table (TimescaleDB not available).')
  fastify.decorate('db', pool)
  fastify.decorate('storage', storage)
}

export default fp(dbPlugin, { name: 'db' })
