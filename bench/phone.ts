import WebSocket from 'ws'
import { BATCH_INTERVAL_MS, BINARY_BATCH_SUBPROTOCOL, READINGS_PER_BATCH, ReadingSource, type FrameFormat, type TimestampFormat } from './readings.js'

export type PhoneMode = 'realtime' | 'flood'

/** A bench user as the phone knows it: credentials for /auth/login and a pre-issued token. */
export interface PhoneUser {
  email: string
  publicKey: string
  token: string
}

export interface PhoneOptions {
  index: number
  baseUrl: string
  wsUrl: string
  user: PhoneUser
  /** Log in with POST /auth/login (else use the pre-issued token). */
  login: boolean
  mode: PhoneMode
  /** Most unacknowledged batches on the wire. */
  window: number
  timestampFormat: TimestampFormat
  /** Batches as JSON text (default) or binary CBOR frames. */
  frames?: FrameFormat
  /** How long create/destroy and the final drain of acks may take. */
  timeoutMs: number
  /** Flood phones date their readings from here (epoch ms); real-time phones use the wall clock. */
  floodStartMs: number
  /**
   * When the socket drops (an instance behind the load balancer died), connect
   * again, resume the session (create_session -> session_already_exist) and
   * resend every unacknowledged batch, as a real phone does. Off: a drop is an error.
   */
  resume?: boolean
}

export interface PhoneResult {
  index: number
  sessionId: number | undefined
  batchesSent: number
  batchesAcked: number
  readingsSent: number
  readingsAcked: number
  /** The last totalSensorReadingsWritten the server reported in an ack. */
  lastAckedTotal: number
  retries: number
  /** Batches produced on schedule that had to wait because the window was full (real time). */
  windowStalls: number
  firstSendAt: number | undefined
  lastAckAt: number | undefined
  integrity: string | undefined
  destroyedTotal: number | undefined
  loginFallback: boolean
  errorCount: number
  errors: string[]
  /** Send -> ack, one per acknowledged batch. */
  latenciesMs: number[]
  /** When each of those batches was first sent (epoch ms), for the latency timeline. */
  sentAtMs: number[]
  /** session_destroyed frames received after this phone's session had already been destroyed. */
  duplicateDestroyed: number
  /** Sessions resumed on a new socket after the old one dropped (resume). */
  resumes: number
  /** Socket lost -> session resumed, in ms, one per resume. */
  resumeMs: number[]
  /** Batches sent again after a resume because their ack was lost with the socket. */
  resent: number
}

interface Frame { event: string, data: Record<string, unknown> }

interface Waiter {
  events: string[]
  resolve: (frame: Frame) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
}

/** High-resolution wall clock, comparable between the bench's processes. */
export const now = () => performance.timeOrigin + performance.now()

const MAX_KEPT_ERRORS = 10
const RETRY_DELAY_MS = 100

/** Spreads phones' send times evenly over one batch interval. */
export const realtimeOffsetMs = (index: number) => ((index * 0.6180339887) % 1) * BATCH_INTERVAL_MS

/**
 * One simulated phone: logs in, opens the recording socket, creates a
 * session, streams batches pipelined up to `window` unacknowledged ones
 * (real time: one per 1.25 s; flood: as fast as acks allow), then destroys
 * the session with the count it sent and records the integrity verdict.
 */
export class Phone {
  readonly result: PhoneResult
  private ws: WebSocket | undefined
  private waiter: Waiter | undefined
  private source: ReadingSource | undefined
  private nextBatch = 0
  private readonly queue: number[] = []
  private readonly inflight = new Map<number, number>()
  private readonly firstSent = new Map<number, number>()
  private readonly acked = new Set<number>()
  private readonly sentOrder: number[] = []
  private producing = false
  private closing = false
  private endAt = 0
  private timer: NodeJS.Timeout | undefined
  private drained: (() => void) | undefined
  private destroyAnswered = false
  private token = ''
  /** Set while a dropped socket is being replaced (resume). */
  private resuming: Promise<void> | undefined

  constructor (private readonly options: PhoneOptions) {
    this.result = {
      index: options.index,
      sessionId: undefined,
      batchesSent: 0,
      batchesAcked: 0,
      readingsSent: 0,
      readingsAcked: 0,
      lastAckedTotal: 0,
      retries: 0,
      windowStalls: 0,
      firstSendAt: undefined,
      lastAckAt: undefined,
      integrity: undefined,
      destroyedTotal: undefined,
      loginFallback: false,
      errorCount: 0,
      errors: [],
      latenciesMs: [],
      sentAtMs: [],
      duplicateDestroyed: 0,
      resumes: 0,
      resumeMs: [],
      resent: 0
    }
  }

  /** Logs in, connects and creates a session (destroying a stale one left by an earlier run). */
  async open (): Promise<void> {
    this.token = this.options.login ? await this.login() : this.options.user.token
    await this.connect()

    let created = await this.request('create_session', { metadata: this.metadata() }, ['session_created', 'session_already_exist'])
    if (created.event === 'session_already_exist') {
      await this.request('destroy_session', {}, ['session_destroyed'])
      created = await this.request('create_session', { metadata: this.metadata() }, ['session_created'])
    }
    this.result.sessionId = Number(created.data.sessionId)
  }

  private async connect (): Promise<void> {
    const binary = this.options.frames === 'binary'
    const ws = new WebSocket(this.options.wsUrl, binary ? [BINARY_BATCH_SUBPROTOCOL] : [], { headers: { authorization: `Bearer ${this.token}` }, perMessageDeflate: false })
    this.ws = ws
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve)
      ws.once('error', reject)
      ws.once('unexpected-response', (_request, response) => reject(new Error(`WebSocket upgrade answered HTTP ${response.statusCode}`)))
    })
    if (binary && ws.protocol !== BINARY_BATCH_SUBPROTOCOL) throw new Error(`the server did not agree to binary batches (subprotocol "${ws.protocol}")`)
    ws.on('message', (raw: WebSocket.RawData) => this.onMessage(raw))
    ws.on('error', err => this.error(`socket error: ${err.message}`))
    ws.on('close', (code, reason) => this.onClose(code, reason.toString()))
  }

  /** Starts streaming at startAt (epoch ms) and produces batches until endAt. */
  start (startAt: number, endAt: number): void {
    this.endAt = endAt
    this.producing = true
    if (this.options.mode === 'flood') {
      this.source = new ReadingSource({ startMs: this.options.floodStartMs, seed: this.options.index * 37 })
      this.timer = setTimeout(() => this.pump(), Math.max(0, startAt - now()))
      return
    }
    const firstDue = startAt + realtimeOffsetMs(this.options.index)
    // Batch b's last sample is taken 10 ms before it is due, as on a phone that sends a batch once it is full.
    this.source = new ReadingSource({ startMs: firstDue - BATCH_INTERVAL_MS, seed: this.options.index * 37 })
    this.scheduleRealtime(firstDue)
  }

  /** Waits for every produced batch to be acknowledged, then destroys the session and closes. */
  async finish (): Promise<PhoneResult> {
    this.producing = false
    if (this.timer) clearTimeout(this.timer)
    await this.resuming
    if (this.ws?.readyState === WebSocket.OPEN) {
      if (this.queue.length > 0 || this.inflight.size > 0) {
        const drained = new Promise<void>(resolve => { this.drained = resolve })
        const timeout = new Promise<void>(resolve => setTimeout(resolve, this.options.timeoutMs).unref())
        await Promise.race([drained, timeout])
        if (this.queue.length > 0 || this.inflight.size > 0) {
          this.error(`${this.queue.length + this.inflight.size} batches unacknowledged ${this.options.timeoutMs} ms after the end`)
        }
      }
      try {
        const destroyed = await this.request('destroy_session', { totalSensorReadingsSent: this.result.readingsSent }, ['session_destroyed'])
        this.result.integrity = String(destroyed.data.integrity)
        this.result.destroyedTotal = Number(destroyed.data.totalSensorReadingsWritten)
        if (this.result.integrity !== 'ok') this.error(`integrity "${this.result.integrity}" at destroy`)
      } catch (err) {
        this.error((err as Error).message)
      }
    }
    await this.close()
    return this.result
  }

  async close (): Promise<void> {
    this.producing = false
    if (this.timer) clearTimeout(this.timer)
    const ws = this.ws
    if (!ws || ws.readyState === WebSocket.CLOSED) return
    this.closing = true
    await new Promise<void>(resolve => {
      ws.once('close', () => resolve())
      const timer = setTimeout(() => { ws.terminate(); resolve() }, 2000)
      timer.unref()
      ws.close(1000)
    })
  }

  private metadata () {
    return { device: 'bench-phone', os: 'bench', appVersion: 'bench', sampleRateHz: 100, activity: 'cycling', bench: true }
  }

  private async login (): Promise<string> {
    const { email, publicKey, token } = this.options.user
    try {
      const response = await fetch(`${this.options.baseUrl}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, publicKey })
      })
      const body = await response.json() as { accessToken?: string, message?: string }
      if (response.ok && body.accessToken) return body.accessToken
      // A rate limiter is not what the bench measures: carry on with the pre-issued token.
      if (response.status !== 429) this.error(`login answered ${response.status}: ${body.message ?? ''}`)
    } catch (err) {
      this.error(`login failed: ${(err as Error).message}`)
    }
    this.result.loginFallback = true
    return token
  }

  private scheduleRealtime (due: number): void {
    if (!this.producing || due >= this.endAt) return
    this.timer = setTimeout(() => {
      this.produce()
      this.scheduleRealtime(due + BATCH_INTERVAL_MS)
    }, Math.max(0, due - now()))
  }

  private produce (): void {
    if (this.inflight.size >= this.options.window) this.result.windowStalls++
    this.queue.push(this.nextBatch++)
    this.pump()
  }

  /** Sends queued batches while the window allows; in flood mode makes new ones. */
  private pump (): void {
    const ws = this.ws
    if (!ws || ws.readyState !== WebSocket.OPEN || !this.source) return
    while (this.inflight.size < this.options.window) {
      let batch = this.queue.shift()
      if (batch === undefined) {
        if (this.options.mode !== 'flood' || !this.producing || now() >= this.endAt) break
        batch = this.nextBatch++
      }
      const sentAt = now()
      if (!this.firstSent.has(batch)) {
        this.firstSent.set(batch, sentAt)
        this.result.batchesSent++
        this.result.readingsSent += READINGS_PER_BATCH
      }
      this.result.firstSendAt ??= sentAt
      this.inflight.set(batch, sentAt)
      this.sentOrder.push(batch)
      ws.send(this.options.frames === 'binary' ? this.source.binaryFrame(batch) : this.source.frame(batch, this.options.timestampFormat))
    }
    this.checkDrained()
  }

  private checkDrained (): void {
    if (this.drained && this.queue.length === 0 && this.inflight.size === 0) {
      this.drained()
      this.drained = undefined
    }
  }

  private onMessage (raw: WebSocket.RawData): void {
    let frame: Frame
    try {
      frame = JSON.parse(raw.toString()) as Frame
    } catch {
      this.error('the server sent a frame that is not JSON')
      return
    }
    const data = frame.data ?? {}
    if (this.waiter?.events.includes(frame.event)) {
      const waiter = this.waiter
      this.waiter = undefined
      clearTimeout(waiter.timer)
      if (frame.event === 'session_destroyed' && this.result.sessionId !== undefined) this.destroyAnswered = true
      waiter.resolve(frame)
      return
    }
    switch (frame.event) {
      case 'sensor_readings_batch_written':
        this.onAck(Number(data.batchId), Number(data.totalSensorReadingsWritten))
        break
      case 'storage_unavailable':
        this.onStorageUnavailable(Number(data.batchId))
        break
      case 'session_destroyed':
        if (this.destroyAnswered && data.sessionId === this.result.sessionId) {
          // The server said it twice; the first answer already settled the session.
          this.result.duplicateDestroyed++
          break
        }
        this.unexpected(frame)
        break
      default:
        this.unexpected(frame)
    }
  }

  private unexpected (frame: Frame): void {
    const data = frame.data ?? {}
    const batchId = data.batchId
    if (typeof batchId === 'number' && this.inflight.delete(batchId)) this.forgetSent(batchId)
    this.error(`${frame.event}: ${JSON.stringify(data).slice(0, 300)}`)
    if (frame.event === 'session_destroyed' || frame.event === 'session_not_found') this.producing = false
    this.pump()
  }

  private onAck (batchId: number, total: number): void {
    const sentAt = this.inflight.get(batchId)
    if (sentAt === undefined) {
      this.error(`ack for batch ${batchId}, which is not in flight`)
      return
    }
    const ackAt = now()
    this.inflight.delete(batchId)
    if (this.sentOrder[0] === batchId) this.sentOrder.shift()
    else {
      this.error(`ack for batch ${batchId} out of order (expected ${this.sentOrder[0]})`)
      this.forgetSent(batchId)
    }
    if (!this.acked.has(batchId)) {
      this.acked.add(batchId)
      this.result.batchesAcked++
      this.result.readingsAcked += READINGS_PER_BATCH
      const firstSentAt = this.firstSent.get(batchId) ?? sentAt
      this.result.latenciesMs.push(ackAt - firstSentAt)
      this.result.sentAtMs.push(firstSentAt)
    }
    this.result.lastAckedTotal = Math.max(this.result.lastAckedTotal, total)
    this.result.lastAckAt = ackAt
    this.pump()
  }

  private onStorageUnavailable (batchId: number): void {
    if (!this.inflight.delete(batchId)) return
    this.forgetSent(batchId)
    this.result.retries++
    setTimeout(() => {
      // Resend in batch order, ahead of batches produced since.
      const at = this.queue.findIndex(queued => queued > batchId)
      this.queue.splice(at === -1 ? this.queue.length : at, 0, batchId)
      this.pump()
    }, RETRY_DELAY_MS).unref()
  }

  private forgetSent (batchId: number): void {
    const at = this.sentOrder.indexOf(batchId)
    if (at !== -1) this.sentOrder.splice(at, 1)
  }

  private onClose (code: number, reason: string): void {
    const resume = this.options.resume === true && !this.closing && this.result.sessionId !== undefined
    if (!resume) {
      this.producing = false
      if (this.timer) clearTimeout(this.timer)
      if (!this.closing) this.error(`socket closed by the server: ${code} ${reason}`)
    }
    if (this.waiter) {
      const waiter = this.waiter
      this.waiter = undefined
      clearTimeout(waiter.timer)
      waiter.reject(new Error(`socket closed (${code}) while waiting for ${waiter.events.join('/')}`))
    }
    if (!resume) this.drained?.()
    else this.resuming ??= this.resume().finally(() => { this.resuming = undefined })
  }

  /**
   * The socket dropped mid-recording: every unacknowledged batch goes back in
   * the queue in batch order, then the phone reconnects (with backoff, for up to
   * timeoutMs), resumes its session and sends them again. A batch whose commit
   * landed before the drop is acknowledged again without being written twice.
   */
  private async resume (): Promise<void> {
    const lostAt = now()
    const unacknowledged = [...this.inflight.keys(), ...this.queue].sort((a, b) => a - b)
    this.inflight.clear()
    this.sentOrder.length = 0
    this.queue.splice(0, this.queue.length, ...unacknowledged)
    for (let attempt = 0; !this.closing; attempt++) {
      try {
        await this.connect()
        if (this.closing) break
        const resumed = await this.request('create_session', { metadata: this.metadata() }, ['session_already_exist', 'session_created'])
        if (resumed.event !== 'session_already_exist' || Number(resumed.data.sessionId) !== this.result.sessionId) {
          throw new Error(`resuming session ${this.result.sessionId} answered ${resumed.event} for session ${String(resumed.data.sessionId)}`)
        }
        this.result.resumes++
        this.result.resumeMs.push(now() - lostAt)
        this.result.resent += this.queue.filter(batch => this.firstSent.has(batch)).length
        this.pump()
        return
      } catch (err) {
        const message = (err as Error).message
        if (message.startsWith('resuming session') || now() - lostAt > this.options.timeoutMs) {
          this.error(`could not resume: ${message}`)
          break
        }
        this.ws?.terminate()
        await new Promise(resolve => setTimeout(resolve, Math.min(1000, 25 * 2 ** attempt)))
      }
    }
    this.producing = false
    if (this.timer) clearTimeout(this.timer)
    this.ws?.terminate()
    this.drained?.()
  }

  private async request (event: string, data: object, expect: string[]): Promise<Frame> {
    const ws = this.ws
    if (!ws || ws.readyState !== WebSocket.OPEN) throw new Error(`cannot send ${event}: socket not open`)
    return await new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined
        reject(new Error(`no ${expect.join('/')} within ${this.options.timeoutMs} ms of ${event}`))
      }, this.options.timeoutMs)
      this.waiter = { events: expect, resolve, reject, timer }
      ws.send(JSON.stringify({ event, data }))
    })
  }

  private error (message: string): void {
    this.result.errorCount++
    if (this.result.errors.length < MAX_KEPT_ERRORS) this.result.errors.push(message)
  }
}
