import type { WebSocket } from 'ws'
import type { Log } from '../logger.js'
import { BINARY_BATCH_SUBPROTOCOL } from '../schemas/binary-batch.js'
import { CLOSE, RecordingConnection, type ConnectionDeps } from './connection.js'
import { recordingSocket } from './socket-reading.js'

export interface RecordingSocketsOptions {
  /** Recording sockets this instance holds at most; over it, upgrades are refused with 503. */
  maxConnections: number
  /** Recording sockets one user holds at most on this instance; over it, 429. */
  maxConnectionsPerUser: number
  /** Keep-alive ping; a socket that has not answered the previous ping is dropped. */
  pingIntervalMs: number
  connection: ConnectionDeps
  observer?: SocketObserver
}

export interface SocketObserver {
  socketOpened?: () => void
  socketClosed?: () => void
}

/**
 * The subprotocol answered at the upgrade: binary batches when the phone
 * offers them, else what ws does by default (the first offered), so a phone
 * that does not ask for binary batches is answered exactly as before.
 */
export function selectSubprotocol (offered: Set<string>): string | false {
  if (offered.has(BINARY_BATCH_SUBPROTOCOL)) return BINARY_BATCH_SUBPROTOCOL
  const [first] = offered
  return first ?? false
}

export type Admission =
  | { admitted: true }
  | { admitted: false, status: 429 | 503, code: string, message: string }

interface Tracked {
  connection: RecordingConnection
  socket: WebSocket
  missedPong: boolean
}

/**
 * The one owner of this instance's recording sockets: admission against the
 * per-instance and per-user caps, the sockets and their counts, keep-alive,
 * disconnecting a user, and closing them all at shutdown.
 */
export class RecordingSockets {
  private readonly open = new Set<Tracked>()
  private readonly perUser = new Map<number, number>()
  private readonly pingTimer: NodeJS.Timeout

  constructor (private readonly options: RecordingSocketsOptions) {
    for (const [name, value] of Object.entries({ maxConnections: options.maxConnections, maxConnectionsPerUser: options.maxConnectionsPerUser, pingIntervalMs: options.pingIntervalMs })) {
      if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`RecordingSockets: ${name} must be a positive integer, got ${String(value)}`)
    }
    this.pingTimer = setInterval(() => this.ping(), options.pingIntervalMs)
    this.pingTimer.unref()
  }

  /** Sockets open on this instance. */
  get size (): number {
    return this.open.size
  }

  /** Whether a user may open one more socket here; asked before the upgrade, so a refusal is plain HTTP. */
  admit (userId: number): Admission {
    if (this.open.size >= this.options.maxConnections) {
      return { admitted: false, status: 503, code: 'TOO_MANY_CONNECTIONS', message: 'This server holds its maximum of recording sockets; retry later' }
    }
    if ((this.perUser.get(userId) ?? 0) >= this.options.maxConnectionsPerUser) {
      return { admitted: false, status: 429, code: 'TOO_MANY_CONNECTIONS_FOR_USER', message: `At most ${this.options.maxConnectionsPerUser} recording sockets per user` }
    }
    return { admitted: true }
  }

  /** Takes an upgraded socket: its frames go to a new connection, and it is counted until it closes. */
  accept (socket: WebSocket, userId: number, log: Log): RecordingConnection {
    const connection = new RecordingConnection(recordingSocket(socket), userId, this.options.connection)
    const tracked: Tracked = { connection, socket, missedPong: false }
    // Attached before any await, so no frame can arrive unheard.
    socket.on('message', (data, isBinary) => connection.handleMessage(data, isBinary))
    socket.on('pong', () => { tracked.missedPong = false })
    socket.on('error', err => {
      log.debug({ err }, 'Recording socket error.')
      socket.terminate()
    })
    socket.on('close', () => {
      connection.handleClose()
      this.open.delete(tracked)
      const left = (this.perUser.get(userId) ?? 1) - 1
      if (left > 0) this.perUser.set(userId, left)
      else this.perUser.delete(userId)
      this.options.observer?.socketClosed?.()
    })
    this.open.add(tracked)
    this.perUser.set(userId, (this.perUser.get(userId) ?? 0) + 1)
    this.options.observer?.socketOpened?.()
    return connection
  }

  /** Closes a user's sockets here (1008), e.g. once the user is deleted: tokens are checked only at the upgrade. */
  disconnectUser (userId: number, reason: string): number {
    let closed = 0
    for (const { connection } of this.open) {
      if (connection.userId !== userId) continue
      connection.close(CLOSE.policy, reason)
      closed++
    }
    return closed
  }

  /**
   * Shutdown: stop reading every socket, let the batches already received
   * commit and be acknowledged, then say goodbye with 1001 so phones
   * reconnect elsewhere.
   */
  async closeAll (): Promise<void> {
    clearInterval(this.pingTimer)
    await Promise.all([...this.open].map(({ connection }) => connection.drain()))
    for (const { connection } of this.open) connection.close(CLOSE.goingAway, 'server shutting down')
  }

  private ping (): void {
    for (const tracked of this.open) {
      if (tracked.missedPong) {
        tracked.socket.terminate()
        continue
      }
      tracked.missedPong = true
      tracked.socket.ping()
    }
  }
}
