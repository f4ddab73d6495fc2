import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../config.js'
import { isDatabaseUnavailable } from '../db/errors.js'
import { findUserByIngestKey } from '../db/ingest-keys-repository.js'
import type { PushObserver, PushOutcome } from '../recording/push-observer.js'
import type { PushResult } from '../recording/push-recorder.js'
import { MqttSubscriber, type Handled, type MqttSubscriberObserver, type ReceivedMessage } from '../transports/mqtt-subscriber.js'
import { keyOfTopic, redactTopic, subscriptionFilter } from '../transports/mqtt-topic.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The MQTT transport's subscriber; null when MQTT_URL is unset. */
    mqtt: MqttSubscriber | null
  }
}

export interface MqttPluginOptions {
  mqtt: Config['mqtt']
  pushObserver?: PushObserver
  observer?: MqttSubscriberObserver
}

/** As the HTTP push's body limit: a minute of every sensor at 100 Hz is about 2 MiB of JSON. */
const MAX_PACKET_BYTES = 4 * 1024 * 1024 + 64 * 1024

const DONE: Handled = { done: true }

/** Answers that will never be stored however often the message comes: acknowledged, so the broker does not resend them. */
type Refusal = Extract<PushResult, { status: 'invalid' | 'too_many_readings' | 'stale_app_session' | 'other_recording_active' | 'user_gone' }>

function refusalDetails (result: Refusal): Record<string, unknown> {
  switch (result.status) {
    case 'invalid': return { issues: result.issues.slice(0, 5) }
    case 'too_many_readings': return { received: result.received, limit: result.limit }
    case 'stale_app_session': return { sessionId: result.sessionId }
    case 'other_recording_active': return { sessionId: result.sessionId }
    case 'user_gone': return {}
  }
}

/**
 * The MQTT transport of Sensor Logger messages (docs/sensor-logger.md, MQTT):
 * subscribes to MQTT_TOPIC on MQTT_URL, takes the ingest key from each
 * topic's last level, and hands the payload to `fastify.recording.push`, the
 * recorder the HTTP push uses. A message is acknowledged once committed or
 * once it is clear it never can be; logs carry the topic with its key
 * redacted. Off when MQTT_URL is unset.
 */
async function mqttPlugin (fastify: FastifyInstance, options: MqttPluginOptions) {
  const { url, topic, shareGroup, clientId, sessionExpirySeconds, maxInflight } = options.mqtt
  if (url === undefined) {
    fastify.decorate('mqtt', null)
    return
  }
  const log = fastify.log.child({ component: 'mqtt' })
  const { push } = fastify.recording
  const observe = (outcome: PushOutcome) => options.pushObserver?.messageHandled?.('mqtt', outcome)

  async function handle (message: ReceivedMessage): Promise<Handled> {
    const context = { topic: redactTopic(message.topic), qos: message.qos }
    let result: PushResult
    try {
      const owner = await findUserByIngestKey(fastify.db, keyOfTopic(message.topic))
      if (!owner) {
        observe('unauthorized')
        log.warn(context, 'MQTT message with an unknown or revoked ingest key; acknowledged and dropped.')
        return DONE
      }
      result = await push.receive(owner.userId, message.payload.toString('utf8'), 'mqtt', message.receivedAtMs)
    } catch (err) {
      if (isDatabaseUnavailable(err)) return { done: false, retry: 'storage_unavailable' }
      throw err
    }
    switch (result.status) {
      case 'too_many_in_flight':
      case 'saturated':
      case 'storage_unavailable':
        if (message.attempt === 1) log.debug({ ...context, outcome: result.status }, 'MQTT message not stored yet; trying again.')
        return { done: false, retry: result.status }
      case 'written':
      case 'duplicate':
      case 'nothing_to_record':
        observe(result.status)
        log.debug({ ...context, outcome: result.status, sessionId: result.sessionId, batchId: result.batchId, attempts: message.attempt }, 'MQTT message handled.')
        return DONE
      case 'test':
        observe(result.status)
        log.debug({ ...context, outcome: result.status }, 'MQTT test message.')
        return DONE
      default:
        observe(result.status)
        log.warn({ ...context, outcome: result.status, ...refusalDetails(result) }, 'MQTT message refused; acknowledged and dropped.')
        return DONE
    }
  }

  const subscriber = new MqttSubscriber({
    url,
    subscription: subscriptionFilter(topic, shareGroup),
    clientId,
    sessionExpirySeconds,
    maxInflight,
    maxPacketBytes: MAX_PACKET_BYTES,
    handle,
    leftUnstored: ({ topic, qos, reason }) => {
      // Counted as what kept it from being stored; 'closing' and 'error' are no recorder answer.
      if (reason !== 'closing' && reason !== 'error') observe(reason)
      const context = { topic: redactTopic(topic), qos, reason }
      if (qos === 0) log.warn(context, 'MQTT message (QoS 0) not stored before shutdown; it is lost.')
      else log.info(context, 'MQTT message not stored before shutdown; the broker resends it to this client id.')
    },
    log: fastify.log,
    observer: options.observer
  })
  fastify.decorate('mqtt', subscriber)
  // Messages start flowing once the whole app (the recording core included) is ready.
  fastify.addHook('onReady', async () => subscriber.start())
  // Registered after the recording plugin, so this runs before its pipeline closes.
  fastify.addHook('onClose', async () => subscriber.close())
}

export default fp(mqttPlugin, { name: 'mqtt', dependencies: ['db', 'recording'] })
