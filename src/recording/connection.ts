import { isDatabaseUnavailable } from '../db/errors.js'
import { decodeBinaryBatch } from '../ingest/binary-batch-frame.js'
import type { BatchReadings } from '../ingest/columnar-readings.js'
import type { EndedSession, SessionState } from '../db/sessions/session-lifecycle.js'
import type { LabelRecorder } from '../labels/session-labels.js'
import type { Log } from '../logger.js'
import { BINARY_BATCH_SUBPROTOCOL } from '../schemas/binary-batch.js'
import {
  clientFrame, createSessionData, destroySessionData, validationIssues, writeBatchData,
  type ErrorEventCode, type ServerEvents, type ServerFrame, type ValidationIssue
} from '../schemas/ws-events.js'
import type { BatchIntake, BatchVerdict } from './batch-intake.js'
import { answerLabelEvent } from './label-event.js'
import type { RecordingSessions } from './recording-sessions.js'
import type { SessionHolder, SessionRegistry } from './session-registry.js'

/** The slice of a ws WebSocket a connection uses. */
export interface RecordingSocket {
  send: (text: string) => void
  close: (code: number, reason: string) => void
  pause: () => void
  resume: () => void
  /** Destroys the connection without a closing handshake. */
  terminate: () => void
  readonly bufferedAmount: number
  /** The subprotocol agreed at the upgrade ('' when none). */
  readonly protocol: string
}

export interface ConnectionSettings {
  batchSize: number
  maxInflightBatches: number
  createSessionTimeoutMs: number
  /** A peer that lets this much unsent data pile up is not reading: it is disconnected. */
  maxSendBufferBytes: number
}

export interface ConnectionDeps {
  sessions: RecordingSessions
  intake: BatchIntake
  registry: SessionRegistry
  settings: ConnectionSettings
  log: Log
  /** Takes the `label` event; without it the event is unknown. */
  labels?: LabelRecorder
}

/**
 * How long a peer that stopped reading gets to complete the closing
 * handshake before its connection is destroyed. It cannot read the close
 * frame, so ws would otherwise hold the socket, and everything buffered for
 * it, for its 30 s closing timeout.
 */
export const UNREAD_PEER_GRACE_MS = 1000

/** WebSocket close codes this service uses. */
export const CLOSE = {
  goingAway: 1001,
  policy: 1008,
  internal: 1011
} as const

type Frames = ServerFrame[]

const noop = () => {}

const frame = <E extends keyof ServerEvents>(event: E, data: ServerEvents[E]) => ({ event, data }) as ServerFrame

function destroyedFrame (ended: EndedSession): ServerFrame {
  return frame('session_destroyed', {
    sessionId: ended.id,
    destroyedAt: ended.destroyedAt.toISOString(),
    reason: ended.reason,
    totalSensorReadingsWritten: ended.totalSensorReadingsWritten,
    integrity: ended.integrity,
    report: ended.report
  })
}

/** The protocol's answer to a batch. */
function batchAnswer (batchId: number, verdict: BatchVerdict): ServerFrame {
  switch (verdict.status) {
    case 'written':
    case 'duplicate':
      return frame('sensor_readings_batch_written', { sessionId: verdict.sessionId, batchId, totalSensorReadingsWritten: verdict.totalSensorReadingsWritten })
    case 'invalid_size':
      return frame('invalid_sensor_readings_batch_size', { sessionId: verdict.sessionId, batchId, expected: verdict.expected, received: verdict.received })
    case 'invalid_schema':
      return frame('invalid_sensor_reading_schema', { sessionId: verdict.sessionId, batchId, issues: verdict.issues.map(({ path, message }) => ({ path: ['sensor_readings', ...path], message })) })
    case 'session_not_found':
      return frame('session_not_found', {})
    case 'storage_unavailable':
      return storageUnavailable(verdict.sessionId, batchId, verdict.message)
    case 'conflict':
      return frame('batch_conflict', { sessionId: verdict.sessionId, batchId, message: 'This batch_id is already written with other readings; these were not stored.' })
  }
}

function storageUnavailable (sessionId: number | null, batchId: number, reason: string): ServerFrame {
  return frame('storage_unavailable', { sessionId, batchId, message: `Not acknowledged, send it again (resending is safe): ${reason}`, retryable: true })
}

/**
 * One phone's socket: parses frames, keeps answers in order, and applies
 * back-pressure; the session lifecycle is the recording core's
 * (RecordingSessions), and batches enter ingest through BatchIntake.
 *
 * Ordering: every answer goes through one promise chain, so answers leave in
 * the order their frames arrived. Batches start work at once (validation,
 * then the pipeline), so a phone may pipeline; session commands wait until
 * every earlier answer has gone out, so destroy_session counts every batch
 * sent before it, and batches wait for an earlier session command to finish.
 */
export class RecordingConnection implements SessionHolder {
  private session: SessionState | undefined
  private outbound: Promise<void> = Promise.resolve()
  private lastCommand: Promise<void> = Promise.resolve()
  private inflight = 0
  private pausedForInflight = false
  private pausedForPipeline = false
  private closed = false
  private readonly announcedEnds = new Set<number>()
  private draining = false
  private terminateTimer: NodeJS.Timeout | undefined
  private readonly createTimer: NodeJS.Timeout
  private readonly log: Log
  /** The phone asked for binary batches at the upgrade; without that, a binary frame is refused as before. */
  private readonly binaryBatches: boolean

  constructor (
    private readonly socket: RecordingSocket,
    readonly userId: number,
    private readonly deps: ConnectionDeps
  ) {
    this.log = deps.log.child({ userId })
    this.binaryBatches = socket.protocol === BINARY_BATCH_SUBPROTOCOL
    this.createTimer = setTimeout(() => {
      if (!this.session) this.close(CLOSE.policy, `no session created within ${deps.settings.createSessionTimeoutMs} ms`)
    }, deps.settings.createSessionTimeoutMs)
  }

  get sessionId (): number | undefined {
    return this.session?.id
  }

  handleMessage (raw: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
    if (this.closed || this.draining) return
    if (isBinary) {
      if (!this.binaryBatches) return this.error('binary_frames_not_supported', 'Frames must be JSON text')
      return this.receiveBinaryBatch(asBuffer(raw))
    }
    let json: unknown
    try {
      json = JSON.parse(raw.toString())
    } catch {
      return this.error('invalid_json', 'The frame is not valid JSON')
    }
    const parsed = clientFrame.safeParse(json)
    if (!parsed.success) return this.error('invalid_frame', 'A frame is {"event": string, "data": object}', validationIssues(parsed.error))
    const { event, data } = parsed.data
    switch (event) {
      case 'write_sensor_readings_batch':
        return this.receiveBatch(data)
      case 'create_session':
        return this.command(() => this.createSession(data))
      case 'destroy_session':
        return this.command(() => this.destroySession(data))
      case 'label':
        return this.command(() => this.label(data))
      default:
        return this.error('unknown_event', `Unknown event "${event.slice(0, 64)}"; expected create_session, write_sensor_readings_batch, destroy_session or label`)
    }
  }

  /** Told by the registry that the session ended elsewhere: expiry, an admin, or another instance. */
  sessionEnded (ended: EndedSession): void {
    this.enqueueInOrder(() => {
      if (this.session?.id === ended.id) this.session = undefined
      return this.announceEnd(ended)
    })
  }

  sessionDeleted (): void {
    this.session = undefined
    this.close(CLOSE.policy, 'the session was deleted')
  }

  /** Stops reading the socket and resolves once every answer owed has been sent. */
  async drain (): Promise<void> {
    this.draining = true
    this.socket.pause()
    let tail
    do {
      tail = this.outbound
      await tail
    } while (tail !== this.outbound)
  }

  handleClose (): void {
    this.closed = true
    clearTimeout(this.createTimer)
    clearTimeout(this.terminateTimer)
    if (this.session) this.deps.registry.detach(this.session.id, this)
  }

  close (code: number, reason: string): void {
    if (this.closed) return
    this.socket.close(code, reason)
    // A drained socket stays paused and would never read the phone's close frame, so the
    // handshake (and the shutdown waiting on it) would hang; frames after drain() are ignored.
    if (this.draining) this.socket.resume()
  }

  /** session_destroyed for a session, at most once per socket, however many paths learn of the end. */
  private announceEnd (ended: EndedSession): Frames {
    if (this.announcedEnds.has(ended.id)) return []
    this.announcedEnds.add(ended.id)
    return [destroyedFrame(ended)]
  }

  private error (code: ErrorEventCode, message: string, issues?: ValidationIssue[]): void {
    const f = frame('error', issues ? { code, message, issues } : { code, message })
    this.enqueue(Promise.resolve([f]))
  }

  /** Appends answers to the ordered chain; they are sent when everything before them has been. */
  private enqueue (answers: Promise<Frames>, onSent?: () => void): void {
    this.outbound = this.outbound
      .then(() => answers)
      .catch((err: unknown): Frames => this.failureFrames(err))
      .then(frames => {
        for (const f of frames) this.send(f)
        onSent?.()
      })
  }

  /** Like enqueue, but the answers are computed only when their turn comes. */
  private enqueueInOrder (answer: () => Frames | Promise<Frames>): void {
    const answers = this.outbound.then(answer)
    answers.catch(noop)
    this.enqueue(answers)
  }

  private failureFrames (err: unknown): Frames {
    if (isDatabaseUnavailable(err)) {
      this.log.warn({ err }, 'Database unavailable for a recording command.')
      return [frame('error', { code: 'storage_unavailable', message: 'The database is unavailable; send the frame again shortly' })]
    }
    this.log.error({ err }, 'Recording command failed.')
    return [frame('error', { code: 'internal_error', message: 'The server failed to process this frame' })]
  }

  private send (f: ServerFrame): void {
    if (this.closed) return
    if (this.socket.bufferedAmount > this.deps.settings.maxSendBufferBytes) {
      if (this.terminateTimer) return
      this.close(CLOSE.policy, 'the client is not reading its socket')
      this.terminateTimer = setTimeout(() => this.socket.terminate(), UNREAD_PEER_GRACE_MS)
      this.terminateTimer.unref()
      return
    }
    this.socket.send(JSON.stringify(f))
  }

  /** Session commands run after every earlier answer is out, and later batches wait for them. */
  private command (run: () => Promise<Frames>): void {
    const answers = this.outbound.then(run)
    this.lastCommand = answers.then(noop, noop)
    this.enqueue(answers)
  }

  private receiveBatch (data: Record<string, unknown>): void {
    const receivedAtMs = Date.now()
    const parsed = writeBatchData.safeParse(data)
    if (!parsed.success) return this.refuseBatchData(typeof data.batch_id === 'number' ? data.batch_id : null, validationIssues(parsed.error))
    this.acceptBatch(parsed.data.batch_id, parsed.data.sensor_readings, receivedAtMs)
  }

  /** A binary batch goes the way a JSON one does once decoded: same intake, same order, same answers. */
  private receiveBinaryBatch (bytes: Buffer): void {
    const receivedAtMs = Date.now()
    const decoded = decodeBinaryBatch(bytes)
    if (decoded.ok) return this.acceptBatch(decoded.batchId, decoded.readings, receivedAtMs)
    if (decoded.kind === 'frame') return this.error('invalid_frame', decoded.message)
    this.refuseBatchData(decoded.batchId, decoded.issues)
  }

  /** A batch frame whose data is malformed: refused before the intake, with the paths. */
  private refuseBatchData (batchId: number | null, issues: ValidationIssue[]): void {
    this.deps.intake.refusedByTransport()
    const f = frame('invalid_sensor_reading_schema', { sessionId: this.session?.id ?? null, batchId, issues })
    this.enqueue(Promise.resolve([f]))
  }

  private acceptBatch (batchId: number, readings: BatchReadings, receivedAtMs: number): void {
    this.inflight++
    if (this.inflight >= this.deps.settings.maxInflightBatches && !this.pausedForInflight) {
      this.pausedForInflight = true
      this.socket.pause()
    }
    let adoption: Promise<unknown> = this.lastCommand
    if (!this.session) {
      // A reconnected phone writing without create_session: look up its active session once,
      // in line with commands, so this batch and the next ones reach the pipeline in frame order.
      adoption = this.lastCommand.then(() => this.adoptActiveSession())
      this.lastCommand = adoption.then(noop, noop)
    }
    const answers = adoption.then(
      this.writeWhenDue(batchId, readings, receivedAtMs),
      // The lookup could not reach the database: this batch was not written, and the phone
      // hears it as a batch it must resend, like any batch during an outage.
      (err: unknown): Frames => {
        if (!isDatabaseUnavailable(err)) throw err
        this.log.warn({ err }, 'Database unavailable while resuming a session.')
        return [storageUnavailable(null, batchId, 'the database is unavailable')]
      })
    // enqueue() handles a failure in order; until then it must not count as an unhandled rejection.
    answers.catch(noop)
    this.enqueue(answers, () => this.batchAnswered())
  }

  /**
   * The batch's write, as a callback that holds its readings only until it
   * runs. Readings are encoded into rows at once, and must not stay reachable
   * while the batch waits for its commit: a parsed JSON batch is some 100 KB
   * of objects, and under overload a million buffered readings kept their
   * JSON alive, several hundred MB. (A closure made here, not in acceptBatch,
   * whose scope the long-lived onSent callback shares.)
   */
  private writeWhenDue (batchId: number, readings: BatchReadings, receivedAtMs: number): () => Promise<Frames> {
    let held: BatchReadings | undefined = readings
    return () => {
      const due = held as BatchReadings
      held = undefined
      return this.writeBatch(batchId, due, receivedAtMs)
    }
  }

  private batchAnswered (): void {
    this.inflight--
    if (this.pausedForInflight && this.inflight < this.deps.settings.maxInflightBatches) {
      this.pausedForInflight = false
      this.resumeIfFree()
    }
  }

  private resumeIfFree (): void {
    if (this.pausedForInflight || this.pausedForPipeline || this.closed || this.draining) return
    // A socket freed by its own acks while the pipeline is full queues behind the sockets
    // already waiting for room: resuming at once let the phones whose acks came back first
    // send again ahead of phones that had waited longer.
    if (this.deps.intake.saturated) return this.waitForRoom()
    this.socket.resume()
  }

  /** Stops reading until the pipeline has room again, in turn with the other waiting sockets. */
  private waitForRoom (): void {
    this.pausedForPipeline = true
    this.socket.pause()
    this.deps.intake.onceDrained(() => {
      this.pausedForPipeline = false
      this.resumeIfFree()
    })
  }

  /** Not async: an async function's frame would keep `readings` alive until the verdict. */
  private writeBatch (batchId: number, readings: BatchReadings, receivedAtMs: number): Promise<Frames> {
    const { intake, settings } = this.deps
    const verdict = intake.submit({ session: this.session, batchId, readings, receivedAtMs, size: { exactly: settings.batchSize } })
    if (intake.saturated && !this.pausedForPipeline) this.waitForRoom()
    return verdict.then(outcome => [batchAnswer(batchId, outcome)])
  }

  /**
   * A phone that reconnected and writes or destroys without create_session
   * continues its user's active session, as if it had sent create_session.
   */
  private async adoptActiveSession (): Promise<SessionState | undefined> {
    if (this.session) return this.session
    const active = await this.deps.sessions.findActive(this.userId)
    if (active) this.attach(active)
    return this.session
  }

  private attach (session: SessionState): void {
    if (this.session?.id === session.id) return
    this.detach()
    this.session = session
    clearTimeout(this.createTimer)
    this.deps.registry.attach(session.id, this)
  }

  private detach (): void {
    if (this.session) this.deps.registry.detach(this.session.id, this)
    this.session = undefined
  }

  private async createSession (data: Record<string, unknown>): Promise<Frames> {
    const parsed = createSessionData.safeParse(data)
    if (!parsed.success) return [frame('error', { code: 'invalid_event_data', message: 'create_session data is {} or {"metadata": {...}}', issues: validationIssues(parsed.error) })]
    const previous = this.session
    const started = await this.deps.sessions.start(this.userId, parsed.data.metadata ?? {})
    switch (started.status) {
      case 'metadata_too_large':
        return [frame('error', { code: 'metadata_too_large', message: `metadata is ${started.bytes} bytes; the limit is ${started.limit}` })]
      case 'user_gone':
        this.close(CLOSE.policy, 'the user no longer exists')
        return []
    }
    const { session, expired } = started
    const frames: Frames = []
    for (const ended of expired) {
      if (ended.id === previous?.id) frames.push(...this.announceEnd(ended))
    }
    // The reaper may have ended the previous session before the registry told this socket:
    // the phone still hears how it ended, and before it hears of the new one.
    if (previous && previous.id !== session.id && !this.announcedEnds.has(previous.id)) {
      const ended = await this.deps.sessions.findEnded(previous.id)
      if (ended) frames.push(...this.announceEnd(ended))
    }
    this.attach(session)
    frames.push(started.status === 'created'
      ? frame('session_created', { sessionId: session.id, createdAt: session.createdAt.toISOString(), expiresAt: session.expiresAt.toISOString() })
      : frame('session_already_exist', { sessionId: session.id, createdAt: session.createdAt.toISOString() }))
    return frames
  }

  /** A label runs in command order, so it applies to the session the frames before it made; its rules are the labels module's. */
  private async label (data: Record<string, unknown>): Promise<Frames> {
    return answerLabelEvent(data, this.userId, this.deps.labels, async () => (this.session ?? await this.adoptActiveSession())?.id)
  }

  private async destroySession (data: Record<string, unknown>): Promise<Frames> {
    const parsed = destroySessionData.safeParse(data)
    if (!parsed.success) return [frame('error', { code: 'invalid_event_data', message: 'destroy_session data is {} or {"totalSensorReadingsSent": int >= 0}', issues: validationIssues(parsed.error) })]
    const session = this.session ?? await this.adoptActiveSession()
    if (!session) return [frame('session_not_found', {})]
    const result = await this.deps.sessions.endByClient(session.id, this.userId, parsed.data.totalSensorReadingsSent)
    if (this.session?.id === session.id) this.detach()
    if (result.status === 'not_found') return [frame('session_not_found', {})]
    // Ended meanwhile by an admin or another instance and already announced here: nothing more to say.
    if (result.status === 'ended_before' && this.announcedEnds.has(result.ended.id)) return [frame('session_not_found', {})]
    return this.announceEnd(result.ended)
  }
}

/** ws hands a binary message over as one Buffer unless its binaryType was changed; any form becomes one Buffer. */
function asBuffer (raw: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Buffer.isBuffer(raw)) return raw
  return Array.isArray(raw) ? Buffer.concat(raw) : Buffer.from(raw)
}
