/**
 * Generates a recording in Sensor Logger's push format and replays it
 * against a running service, message by message, as the app would: a test
 * push, then one message per batch period. See examples/README.md and
 * docs/sensor-logger.md.
 *
 *   npx tsx examples/replay-sensor-logger.ts --url http://localhost:3000 --key mik_1_… --messages 5
 *   npx tsx examples/replay-sensor-logger.ts --mqtt ws://localhost:8080 --key mik_1_… --messages 5
 */
import { randomUUID } from 'node:crypto'
import { parseArgs } from 'node:util'

const { values: args } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://localhost:3000' },
    key: { type: 'string' },
    token: { type: 'string' },
    messages: { type: 'string', default: '5' },
    'period-ms': { type: 'string', default: '1000' },
    'rate-hz': { type: 'string', default: '50' },
    platform: { type: 'string', default: 'android' },
    'session-id': { type: 'string' },
    'first-message-id': { type: 'string', default: '0' },
    fast: { type: 'boolean', default: false },
    resend: { type: 'boolean', default: false },
    mqtt: { type: 'string' },
    topic: { type: 'string' },
    qos: { type: 'string', default: '0' },
    help: { type: 'boolean', default: false }
  }
})

const USAGE = `Usage: npx tsx examples/replay-sensor-logger.ts [options]
  --url <base>            the service (default http://localhost:3000)
  --key <ingest key>      POST /ingest/sensor-logger/<key> (from POST /me/ingest-keys)
  --token <access token>  or POST /ingest/sensor-logger with Authorization: Bearer
  --messages <n>          messages after the test push (default 5)
  --period-ms <ms>        the batch period: time covered by, and between, messages (default 1000)
  --rate-hz <hz>          sampling rate of every sensor (default 50)
  --platform android|ios  android: totalacceleration besides accelerometer and gravity; ios: accelerometer and gravity
  --session-id <id>       the app's recording id (default a new UUID: a new session)
  --first-message-id <n>  messageId of the first message (default 0)
  --resend                send every message twice, as an app does when an answer is lost: the second is a duplicate
  --fast                  do not wait a batch period between messages
  --mqtt <broker url>     publish to an MQTT broker instead of HTTP: ws://host:port as the app does (or mqtt://)
  --topic <topic>         with --mqtt: the topic (default motion-ingest/<key>, what MQTT_TOPIC expects)
  --qos 0|1               with --mqtt: 0 as the app publishes (default), 1 to have the broker acknowledge each message`

function positive (name: string, value: string, min = 1): number {
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got "${value}"`)
  return n
}

interface Entry {
  name: string
  /** Epoch nanoseconds: 19 digits, past what a double holds exactly. */
  time: bigint
  values: Record<string, number | string | boolean>
  accuracy?: number
}

const round = (value: number) => Number(value.toFixed(6))

/**
 * One batch period of a ride: pedalling at about 1.4 Hz shakes the phone in
 * a pocket, gravity stays mostly on y, the bike turns slowly.
 */
function entriesFor (platform: 'android' | 'ios', startNs: bigint, periodMs: number, rateHz: number, from: number): Entry[] {
  const entries: Entry[] = []
  const samples = Math.max(1, Math.round(periodMs * rateHz / 1000))
  const stepNs = BigInt(Math.round(1e9 / rateHz))
  for (let i = 0; i < samples; i++) {
    const n = from + i
    const t = n / rateHz
    // A few hundred nanoseconds of jitter, as real sensor clocks have.
    const time = startNs + BigInt(n) * stepNs + BigInt((n * 7919) % 900)
    const pedal = Math.sin(2 * Math.PI * 1.4 * t)
    const gravity = { x: round(0.8 * Math.sin(t / 7)), y: round(9.7), z: round(1.2 * Math.cos(t / 5)) }
    const motion = { x: round(0.9 * pedal), y: round(1.6 * Math.sin(2 * Math.PI * 2.8 * t)), z: round(0.6 * pedal + 0.1 * Math.sin(97 * t)) }
    if (platform === 'android') {
      entries.push({ name: 'totalacceleration', time, values: { x: round(motion.x + gravity.x), y: round(motion.y + gravity.y), z: round(motion.z + gravity.z) } })
    }
    entries.push({ name: 'accelerometer', time, values: motion })
    entries.push({ name: 'gravity', time, values: gravity })
    entries.push({ name: 'gyroscope', time, values: { x: round(0.3 * pedal), y: round(0.05 * Math.cos(t)), z: round(0.2 * Math.sin(t / 3)) } })
    entries.push({ name: 'magnetometer', time, values: { x: round(22 + 3 * Math.sin(t / 9)), y: round(-8 + Math.cos(t / 9)), z: round(-38 + 0.5 * pedal) }, accuracy: 3 })
  }
  const last = startNs + BigInt(from + samples - 1) * stepNs
  const seconds = (from + samples) / rateHz
  entries.push({
    name: 'location',
    time: last,
    values: { latitude: round(47.3769 + seconds * 4e-5), longitude: round(8.5417 + seconds * 2e-5), altitude: 408, speed: 5.2, bearing: 34, horizontalAccuracy: 4.5, verticalAccuracy: 3, speedAccuracy: 0.5, bearingAccuracy: 10 }
  })
  entries.push({ name: 'battery', time: last, values: { batteryLevel: 0.81, batteryState: 'unplugged', lowPowerMode: false } })
  return entries
}

/** The message as the app writes it: `time` a bare JSON number (JSON.stringify cannot write a bigint). */
function messageText (messageId: number, sessionId: string, deviceId: string, entries: Entry[]): string {
  const payload = entries.map(({ name, time, values, accuracy }) =>
    `{"name":${JSON.stringify(name)},"time":${time},"values":${JSON.stringify(values)}${accuracy === undefined ? '' : `,"accuracy":${accuracy}`}}`)
  return `{"messageId":${messageId},"sessionId":${JSON.stringify(sessionId)},"deviceId":${JSON.stringify(deviceId)},"payload":[${payload.join(',')}]}`
}

type Send = (body: string) => Promise<{ ok: boolean, text: string }>

function httpSender (): Send {
  const base = args.url as string
  if (!args.key && !args.token) throw new Error('--key <ingest key> or --token <access token> is required (or --mqtt)')
  const url = args.key ? new URL(`/ingest/sensor-logger/${encodeURIComponent(args.key)}`, base) : new URL('/ingest/sensor-logger', base)
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (!args.key && args.token) headers.authorization = `Bearer ${args.token}`
  return async body => {
    const response = await fetch(url, { method: 'POST', headers, body })
    const text = await response.text()
    const retryAfter = response.headers.get('retry-after')
    return { ok: response.ok, text: `${response.status} ${text}${retryAfter ? ` (Retry-After: ${retryAfter})` : ''}` }
  }
}

/** The topic with its key level cut, for the console. */
const shownTopic = (topic: string) => `${topic.slice(0, topic.lastIndexOf('/') + 1)}…`

async function mqttSender (brokerUrl: string, topic: string, qos: 0 | 1): Promise<{ send: Send, close: () => Promise<void> }> {
  const { connectAsync } = await import('mqtt')
  const client = await connectAsync(brokerUrl, { clientId: `replay-${randomUUID().slice(0, 8)}`, reconnectPeriod: 0 })
  return {
    // The service's answer is not sent back over MQTT: at QoS 1 the broker's acknowledgement is all there is,
    // at QoS 0 (the app's) not even that. The service's logs and metrics tell what became of each message.
    send: async body => {
      await client.publishAsync(topic, body, { qos })
      return { ok: true, text: `published to ${shownTopic(topic)} (QoS ${qos}${qos === 1 ? ', acknowledged by the broker' : ''})` }
    },
    close: () => client.endAsync()
  }
}

async function main (): Promise<number> {
  if (args.help) {
    console.log(USAGE)
    return 0
  }
  const messages = positive('messages', args.messages as string, 0)
  const periodMs = positive('period-ms', args['period-ms'] as string)
  const rateHz = positive('rate-hz', args['rate-hz'] as string)
  const firstMessageId = positive('first-message-id', args['first-message-id'] as string, 0)
  const platform = args.platform
  if (platform !== 'android' && platform !== 'ios') throw new Error('--platform must be android or ios')
  if (args.mqtt !== undefined && !args.topic && !args.key) throw new Error('--mqtt needs --key <ingest key> (or --topic)')
  if (args.qos !== '0' && args.qos !== '1') throw new Error('--qos must be 0 or 1')

  const topic = args.topic ?? `motion-ingest/${args.key}`
  const mqtt = args.mqtt === undefined ? undefined : await mqttSender(args.mqtt, topic, args.qos === '1' ? 1 : 0)
  const send = mqtt?.send ?? httpSender()
  const sessionId = args['session-id'] ?? randomUUID()
  const deviceId = `replay-${platform}`
  const startNs = BigInt(Date.now()) * 1_000_000n
  let failures = 0

  try {
    // The app's "test push" before recording: answered without starting a session.
    const test = `{"messageId":0,"sessionId":${JSON.stringify(sessionId)},"deviceId":${JSON.stringify(deviceId)},"payload":[{"name":"test","time":${startNs},"values":{}}]}`
    console.log('-> test push')
    const tested = await send(test)
    console.log(`<- ${tested.text}`)
    if (!tested.ok) return 1

    const samplesPerMessage = Math.max(1, Math.round(periodMs * rateHz / 1000))
    for (let i = 0; i < messages; i++) {
      const entries = entriesFor(platform, startNs, periodMs, rateHz, i * samplesPerMessage)
      const messageId = firstMessageId + i
      console.log(`-> message ${messageId}: ${entries.length} entries (${samplesPerMessage} instants, ${platform}), recording ${sessionId}`)
      const text = messageText(messageId, sessionId, deviceId, entries)
      const answer = await send(text)
      console.log(`<- ${answer.text}`)
      if (!answer.ok) failures++
      if (args.resend) {
        console.log(`-> message ${messageId} again`)
        console.log(`<- ${(await send(text)).text}`)
      }
      if (!args.fast && i < messages - 1) await new Promise(resolve => setTimeout(resolve, periodMs))
    }
  } finally {
    await mqtt?.close()
  }
  console.log(failures === 0 ? `Sent ${messages} messages.` : `${failures} of ${messages} messages were not accepted.`)
  return failures === 0 ? 0 : 1
}

main().then(code => { process.exitCode = code }, (err: Error) => {
  console.error(`error: ${err.message}`)
  process.exitCode = 2
})
