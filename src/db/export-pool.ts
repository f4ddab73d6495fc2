import type { Log } from '../logger.js'
import { createPool, type ClientSource, type Pool, type PoolClient } from './pool.js'

/** Every export connection stayed in use for the whole wait. */
export class ExportPoolBusyError extends Error {
  readonly code = 'EXPORT_POOL_BUSY'

  constructor (readonly waitedMs: number) {
    super(`Every export connection is in use (waited ${waitedMs} ms)`)
    this.name = 'ExportPoolBusyError'
  }
}

export interface ExportPoolOptions {
  connectionString: string
  /** Connections exports may hold at once. */
  max: number
  /** How long a request waits for one of them before ExportPoolBusyError. */
  waitMs: number
  logger: Log
}

interface Waiter {
  grant: () => void
}

/**
 * The connections readings exports run on (CSV downloads, JSON pages), apart
 * from the service's pool: however many downloads stall, they hold at most
 * `max` connections and never one that ingest, auth or /health needs.
 *
 * Slots are counted here rather than left to pg's queue, whose only bound is
 * connectionTimeoutMillis: that one also bounds opening a connection, so a
 * timeout could not tell "all in use" (503, retry later) from "database slow
 * to answer". A slot is taken before pool.connect() and given back when pg
 * reports the client released, whether returned or destroyed.
 */
export class ExportPool implements ClientSource {
  private readonly pool: Pool
  private readonly lent = new Set<PoolClient>()
  private readonly waiters: Waiter[] = []
  private taken = 0
  private closed = false

  constructor (private readonly options: ExportPoolOptions) {
    if (!Number.isInteger(options.max) || options.max < 1) throw new Error(`ExportPool needs a positive integer max, got ${options.max}`)
    this.pool = createPool({ connectionString: options.connectionString, max: options.max, logger: options.logger, applicationName: 'motion-ingest-export' })
    this.pool.on('release', (_err, client) => {
      if (this.lent.delete(client)) this.freeSlot()
    })
  }

  /** Export connections checked out or being opened. */
  get active (): number {
    return this.taken
  }

  /** Requests waiting for an export connection. */
  get waiting (): number {
    return this.waiters.length
  }

  async connect (): Promise<PoolClient> {
    await this.takeSlot()
    let client: PoolClient
    try {
      client = await this.pool.connect()
    } catch (err) {
      this.freeSlot()
      throw err
    }
    this.lent.add(client)
    return client
  }

  /** Refuses new requests, fails the waiting ones, and ends the pool once every export has released its client. */
  async end (): Promise<void> {
    this.closed = true
    for (const waiter of this.waiters.splice(0)) waiter.grant()
    await this.pool.end()
  }

  private takeSlot (): Promise<void> {
    if (this.closed) return Promise.reject(new Error('The export pool is closed'))
    if (this.taken < this.options.max) {
      this.taken++
      return Promise.resolve()
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          clearTimeout(timer)
          if (this.closed) reject(new Error('The export pool is closed'))
          else resolve()
        }
      }
      const timer = setTimeout(() => {
        const at = this.waiters.indexOf(waiter)
        if (at !== -1) this.waiters.splice(at, 1)
        reject(new ExportPoolBusyError(this.options.waitMs))
      }, this.options.waitMs)
      this.waiters.push(waiter)
    })
  }

  private freeSlot (): void {
    // A freed slot passes straight to the longest waiter, so the count never exceeds max.
    const next = this.waiters.shift()
    if (next) next.grant()
    else this.taken--
  }
}
