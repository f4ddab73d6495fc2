import { setTimeout as sleep } from 'node:timers/promises'
import mqtt, { type IConnackPacket, type IPublishPacket, type MqttClient } from 'mqtt'
import { silentLog, type Log } from '../logger.js'
import { OrderedAcks } from './ordered-acks.js'
import { Slots } from './slots.js'

/** Why a message was not stored yet and is tried again (never acknowledged meanwhile). */
export type RetryReason = 'too_many_in_flight' | 'saturated' | 'storage_unavailable' | 'error'

/** What the handler made of a message. */
export type Handled =
  /** Stored, already stored, or never storable: acknowledge it. */
  | { done: true }
  /** Not stored; try again later and do not acknowledge it meanwhile. */
  | { done: false, retry: Exclude<RetryReason, 'error'> }

export interface ReceivedMessage {
  topic: string
  payload: Buffer
  qos: 0 | 1 | 2
  receivedAtMs: number
  /** 1 the first time the handler sees this delivery, then 2, 3, … */
  attempt: number
}

/** Hooks for metrics. */
export interface MqttSubscriberObserver {
  connectionChanged?: (connected: boolean) => void
  retried?: (reason: RetryReason) => void
}

export interface MqttSubscriberOptions {
  /** mqtt://, mqtts://, ws:// or wss://, credentials in the URL. */
  url: string
  /** What to subscribe to, e.g. `$share/motion-ingest/motion-ingest/+` (see mqtt-topic.ts). */
  subscription: string
  /** Stable per instance: the broker keeps this client's session (subscription and unacknowledged messages) under it. */
  clientId: string
  /** How long the broker keeps the session after a disconnect; 0 ends it with the connection. */
  sessionExpirySeconds: number
  /** Messages handled at once; also the Receive Maximum: QoS 1 messages the broker sends before their PUBACK. */
  maxInflight: number
  /** Largest packet the broker may send this client (MQTT 5 Maximum Packet Size); the broker drops larger messages. */
  maxPacketBytes: number
  /** Stores one message. Throwing counts as an unexpected error: retried a few times, then acknowledged. */
  handle: (message: ReceivedMessage) => Promise<Handled>
  /** A message left unstored because the subscriber closed while it waited for a retry or a slot. */
  leftUnstored?: (message: { topic: string, qos: number, reason: RetryReason | 'closing' }) => void
  log?: Log
  observer?: MqttSubscriberObserver
}

export interface MqttSubscriberStatus {
  connected: boolean
  /** Messages taken and not yet done with: being handled, or waiting behind an earlier message of their topic. */
  inFlight: number
  /** Messages being handled now (waiting for a commit or a retry): at most one a topic. */
  handling: number
  /** The most messages ever handled at once. */
  maxHandling: number
  /** PUBACKs sent. */
  acked: number
  /** Acknowledgements of the current connection waiting for their message's or an earlier message's commit. */
  acksWaiting: number
}

/** First wait and cap, in ms, before trying a message again: short for one user's crowding, longer when storage is down. */
const BACKOFF: Record<RetryReason, { firstMs: number, maxMs: number }> = {
  too_many_in_flight: { firstMs: 20, maxMs: 500 },
  saturated: { firstMs: 200, maxMs: 2000 },
  storage_unavailable: { firstMs: 500, maxMs: 5000 },
  error: { firstMs: 500, maxMs: 5000 }
}
/** An unexpected error may be a bug that fails every time: after this many attempts the message is acknowledged and dropped. */
const MAX_ERROR_ATTEMPTS = 5

const backoffMs = (reason: RetryReason, attempt: number): number => {
  const { firstMs, maxMs } = BACKOFF[reason]
  const ms = Math.min(maxMs, firstMs * 2 ** Math.min(attempt - 1, 20))
  return ms * (0.75 + Math.random() * 0.5)
}

/**
 * Passed to mqtt.js's handleMessage callback for a QoS 1 message: its QoS 1
 * path then sends no PUBACK (it acknowledges only when the callback gets no
 * error), and this subscriber sends it itself after the commit.
 */
const ACK_AFTER_COMMIT = new Error('PUBACK deferred until the message is committed')

/** The broker URL without credentials, for logs. */
export function brokerForLog (url: string): string {
  const parsed = new URL(url)
  return `${parsed.protocol}//${parsed.host}${parsed.pathname === '/' ? '' : parsed.pathname}`
}

/**
 * One MQTT 5 client subscribed (QoS 1) with a persistent session, handing
 * each message to `handle` and acknowledging it only once handled.
 *
 * mqtt.js handles a connection's packets strictly one after another: the
 * next packet is read only when the previous one's callback (its
 * customHandleAcks callback, or handleMessage's) has been called, so holding
 * a PUBACK back there until the commit would write one message at a time.
 * Instead, handleMessage takes a slot (at most `maxInflight` messages are
 * handled at once; while all are taken the connection is not read, which is
 * the backpressure), calls back at once with ACK_AFTER_COMMIT so mqtt.js
 * sends no PUBACK itself, and the PUBACK follows the commit, in arrival
 * order (OrderedAcks). The broker sends at most `maxInflight` unacknowledged
 * QoS 1 messages (Receive Maximum). Messages of one topic (one phone's key)
 * are handled one after another, in the order published; those of
 * different topics at once, so the group commit still gathers many.
 *
 * A message the handler cannot store yet is tried again with a backoff and
 * not acknowledged meanwhile; MQTT 5 brokers resend an unacknowledged
 * message only on the session's next connection, so waiting for a resend
 * would stall it until then. A QoS 1 message whose connection dropped is
 * left to that resend.
 */
export class MqttSubscriber {
  private readonly log: Log
  private readonly slots: Slots
  private readonly stopping = new AbortController()
  private readonly handling = new Set<Promise<void>>()
  private client: MqttClient | undefined
  private acks: OrderedAcks | undefined
  private running = false
  private isConnected = false
  /** Connection errors since the last connect: only the first of a broker outage is a warning. */
  private failures = 0
  /** The last message of each topic in the works: the next one of that topic starts after it. */
  private readonly topicTails = new Map<string, Promise<void>>()
  private handlingNow = 0
  private maxHandling = 0
  private acked = 0
  private subscribed!: () => void
  /** Resolves once the subscription is in place (subscribed, or found in a resumed session). */
  readonly whenSubscribed: Promise<void> = new Promise(resolve => { this.subscribed = resolve })

  constructor (private readonly options: MqttSubscriberOptions) {
    if (!Number.isInteger(options.maxInflight) || options.maxInflight < 1 || options.maxInflight > 65_535) {
      throw new Error(`MqttSubscriber: maxInflight must be an integer from 1 to 65535, got ${options.maxInflight}`)
    }
    this.log = (options.log ?? silentLog).child({ component: 'mqtt' })
    this.slots = new Slots(options.maxInflight)
  }

  /** Connects, and keeps reconnecting (every second) until close(). */
  start (): void {
    if (this.client) throw new Error('MqttSubscriber: already started')
    const { url, clientId, sessionExpirySeconds, maxInflight, maxPacketBytes } = this.options
    const client = mqtt.connect(url, {
      // Handlers first: a resumed session's queued messages follow the CONNACK at once.
      manualConnect: true,
      protocolVersion: 5,
      clientId,
      clean: false,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      // Subscribed on each connect that finds no session (onConnect).
      resubscribe: false,
      properties: { sessionExpiryInterval: sessionExpirySeconds, receiveMaximum: maxInflight, maximumPacketSize: maxPacketBytes }
    })
    this.client = client
    this.running = true
    client.handleMessage = (packet, callback) => this.receive(packet, callback)
    client.on('connect', connack => this.onConnect(client, connack))
    client.on('close', () => this.onDisconnect())
    client.on('error', err => {
      const level = this.failures++ === 0 ? 'warn' : 'debug'
      this.log[level]({ err, broker: brokerForLog(url), failures: this.failures }, 'MQTT connection failed; reconnecting every second.')
    })
    client.connect()
  }

  status (): MqttSubscriberStatus {
    return {
      connected: this.isConnected,
      inFlight: this.slots.inUse,
      handling: this.handlingNow,
      maxHandling: this.maxHandling,
      acked: this.acked,
      acksWaiting: this.acks?.waiting ?? 0
    }
  }

  /**
   * Stops taking messages, lets those being committed finish (their PUBACKs
   * go out), then disconnects. Messages waiting for a retry stay
   * unacknowledged: the broker resends them to this client id's next
   * connection while the session lasts.
   */
  async close (): Promise<void> {
    const client = this.client
    if (!client || !this.running) return
    this.running = false
    this.stopping.abort()
    await Promise.allSettled([...this.handling])
    await client.endAsync()
    this.onDisconnect()
  }

  private onConnect (client: MqttClient, connack: IConnackPacket): void {
    this.acks?.abandon()
    const acks = new OrderedAcks(packetId => this.sendPuback(client, acks, packetId))
    this.acks = acks
    this.failures = 0
    this.setConnected(true)
    const { subscription, clientId } = this.options
    const broker = brokerForLog(this.options.url)
    if (connack.sessionPresent) {
      this.log.info({ broker, clientId, subscription }, 'MQTT session resumed.')
      this.subscribed()
      return
    }
    client.subscribe(subscription, { qos: 1 }, (err, granted) => {
      const code = granted?.[0]?.qos
      if (err || code === undefined || code > 2) {
        this.log.error({ err, broker, clientId, subscription, reasonCode: code }, 'MQTT subscription refused; check the broker\'s ACL for this client.')
        return
      }
      this.log.info({ broker, clientId, subscription, qos: code }, 'MQTT subscribed.')
      this.subscribed()
    })
  }

  private onDisconnect (): void {
    // Pending PUBACKs belong to the connection that dropped: the broker resends those messages.
    this.acks?.abandon()
    this.acks = undefined
    this.setConnected(false)
  }

  private setConnected (connected: boolean): void {
    if (this.isConnected === connected) return
    this.isConnected = connected
    if (!connected && this.running) this.log.warn({ broker: brokerForLog(this.options.url) }, 'MQTT disconnected; reconnecting.')
    this.options.observer?.connectionChanged?.(connected)
  }

  private sendPuback (client: MqttClient, acks: OrderedAcks, packetId: number): void {
    if (acks !== this.acks || !client.connected) return
    // mqtt.js has no public call for a PUBACK; its own QoS 1 path sends this same packet.
    const internals = client as unknown as { _sendPacket: (packet: { cmd: 'puback', messageId: number, reasonCode: number }) => void }
    internals._sendPacket({ cmd: 'puback', messageId: packetId, reasonCode: 0 })
    this.acked++
  }

  private receive (packet: IPublishPacket, callback: (err?: Error) => void): void {
    const receivedAtMs = Date.now()
    const acks = this.acks
    const settle = packet.qos > 0 && packet.messageId !== undefined && acks ? acks.track(packet.messageId) : undefined
    // The subscription is QoS 1, so the broker delivers QoS 2 publishes at QoS 1: no packet here has QoS 2.
    const release = () => callback(packet.qos > 0 ? ACK_AFTER_COMMIT : undefined)
    const work = this.slots.acquire().then(async () => {
      release()
      try {
        await this.inTopicOrder(packet.topic, () => this.process(packet, receivedAtMs, acks, settle))
      } finally {
        this.slots.release()
      }
    })
    this.handling.add(work)
    work.finally(() => this.handling.delete(work)).catch(() => {})
  }

  /**
   * Runs `task` after every earlier message of the topic is done. A topic
   * is one publisher's key: its messages keep the order they were published
   * in, so a recording's first message starts its session (and sets where
   * its batch ids begin) and a recording's last message is stored before the
   * next recording's first ends it. Different topics run side by side.
   */
  private async inTopicOrder (topic: string, task: () => Promise<void>): Promise<void> {
    const previous = this.topicTails.get(topic) ?? Promise.resolve()
    const current = previous.then(task)
    const tail = current.catch(() => {})
    this.topicTails.set(topic, tail)
    try {
      await current
    } finally {
      if (this.topicTails.get(topic) === tail) this.topicTails.delete(topic)
    }
  }

  private async process (packet: IPublishPacket, receivedAtMs: number, acks: OrderedAcks | undefined, settle: (() => void) | undefined): Promise<void> {
    const { topic, qos } = packet
    if (!this.running) {
      this.options.leftUnstored?.({ topic, qos, reason: 'closing' })
      return
    }
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
    this.handlingNow++
    this.maxHandling = Math.max(this.maxHandling, this.handlingNow)
    try {
      for (let attempt = 1; ; attempt++) {
        let reason: RetryReason
        try {
          const handled = await this.options.handle({ topic, payload, qos, receivedAtMs, attempt })
          if (handled.done) {
            settle?.()
            return
          }
          reason = handled.retry
        } catch (err) {
          if (attempt >= MAX_ERROR_ATTEMPTS) {
            this.log.error({ err, attempts: attempt, qos }, 'An MQTT message failed every attempt; acknowledged and dropped.')
            settle?.()
            return
          }
          this.log.warn({ err, attempt, qos }, 'An MQTT message failed; trying again.')
          reason = 'error'
        }
        this.options.observer?.retried?.(reason)
        if (this.running) await sleep(backoffMs(reason, attempt), undefined, { signal: this.stopping.signal }).catch(() => {})
        if (!this.running) {
          this.options.leftUnstored?.({ topic, qos, reason })
          return
        }
        // Its connection dropped: the broker resends it on the next one (the session outlives a connection).
        if (qos > 0 && this.options.sessionExpirySeconds > 0 && acks !== this.acks) return
      }
    } finally {
      this.handlingNow--
    }
  }
}
