/**
 * The HTTP-push phase: simulated Sensor Logger phones, each pushing one
 * message a second (1 s of totalacceleration, gyroscope and magnetometer at
 * 100 Hz: 300 readings) to `POST /ingest/sensor-logger/<ingest key>`, in the
 * app's JSON shape with bare 19-digit nanosecond `time` numbers. Measures
 * readings/s and the time to each HTTP 200, and checks that every
 * acknowledged reading is stored.
 */
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { mintIngestKey } from '../src/db/ingest-keys-repository.js'
import type { Pool } from '../src/db/pool.js'
import type { ServerProcess } from './server-process.js'
import { summarizeLatencies, type LatencySummary } from './stats.js'
import { verifySessions, type Verification } from './verify.js'

/** Instants in one message: a second at 100 Hz, the app's batch period of 1 s. */
export const PUSH_INSTANTS = 100
const PUSH_SENSORS = ['totalacceleration', 'gyroscope', 'magnetometer'] as const
export const PUSH_READINGS_PER_MESSAGE = PUSH_INSTANTS * PUSH_SENSORS.length
const PUSH_INTERVAL_MS = 1000
const STEP_NS = 10_000_000n
/** A message refused with 429 or 503 is sent again after this long (the app retries its failed messages too). */
const RETRY_DELAY_MS = 250
const MAX_ATTEMPTS = 20

export interface PushPhaseOptions {
  pool: Pool
  startService: () => Promise<ServerProcess>
  /** Beta testers the phones push for, one each (mints each an ingest key). */
  userIds: number[]
  seconds: number
  scanLog: (file: string) => Promise<{ errors: number, samples: string[] }>
  say: (line: string) => void
}

export interface PushPhaseResult {
  phones: number
  seconds: number
  /** Phones x 300 readings/s. */
  offeredReadingsPerSecond: number
  messagesSent: number
  messagesAcked: number
  readingsAcked: number
  /** Acknowledged readings over the time from the first push to the last 200. */
  readingsPerSecond: number
  /** From a message's first send to its HTTP 200 (retries included). */
  ackLatencyMs: LatencySummary
  /** 429/503 answers sent again. */
  retries: number
  errors: number
  errorSamples: string[]
  serverLogErrors: number
  serverLogSamples: string[]
  verification: Verification
  serverLog: string
}

/** The body of message `messageId`: bare nanosecond numbers, which JSON.stringify cannot write. */
export function pushMessageText (messageId: number, appSessionId: string, firstNs: bigint): string {
  const entries: string[] = []
  for (let i = 0; i < PUSH_INSTANTS; i++) {
    const time = firstNs + BigInt(i) * STEP_NS
    const n = messageId * PUSH_INSTANTS + i
    for (const [s, name] of PUSH_SENSORS.entries()) {
      const values = `{"x":${Math.sin(n + s).toFixed(6)},"y":${Math.cos(n + s).toFixed(6)},"z":${(9.81 + s * 0.01).toFixed(6)}}`
      entries.push(`{"name":"${name}","time":${time},"values":${values}${name === 'magnetometer' ? ',"accuracy":3' : ''}}`)
    }
  }
  return `{"messageId":${messageId},"sessionId":"${appSessionId}","deviceId":"bench-${appSessionId.slice(0, 8)}","payload":[${entries.join(',')}]}`
}

interface PhoneOutcome {
  sessionId?: number
  messagesSent: number
  readingsAcked: number
  latenciesMs: number[]
  lastAckAt: number
  retries: number
  errors: string[]
}

async function pushOnce (url: string, body: string): Promise<{ status: number, json: unknown }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  const text = await response.text()
  let json: unknown
  try { json = JSON.parse(text) } catch { json = text }
  return { status: response.status, json }
}

/** One phone: message k leaves at offsetMs + k s; each is sent again on 429/503 until it is acknowledged. */
async function runPhone (url: string, startAt: number, offsetMs: number, seconds: number): Promise<PhoneOutcome> {
  const appSessionId = randomUUID()
  const outcome: PhoneOutcome = { messagesSent: 0, readingsAcked: 0, latenciesMs: [], lastAckAt: 0, retries: 0, errors: [] }
  const firstNs = BigInt(startAt) * 1_000_000n + 123_457n
  const sends: Array<Promise<void>> = []
  for (let k = 0; offsetMs + k * PUSH_INTERVAL_MS < seconds * 1000; k++) {
    const due = startAt + offsetMs + k * PUSH_INTERVAL_MS
    await sleep(Math.max(0, due - Date.now()))
    const body = pushMessageText(k, appSessionId, firstNs + BigInt(k * PUSH_INSTANTS) * STEP_NS)
    outcome.messagesSent++
    // Messages overlap like the app's: the next leaves on schedule even if this one is still waiting.
    sends.push((async () => {
      const sentAt = performance.now()
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        try {
          const { status, json } = await pushOnce(url, body)
          if (status === 200) {
            const answer = json as { sessionId?: number, written?: number }
            outcome.latenciesMs.push(performance.now() - sentAt)
            outcome.lastAckAt = Date.now()
            outcome.readingsAcked += answer.written ?? 0
            if (answer.sessionId !== undefined) outcome.sessionId = answer.sessionId
            return
          }
          if (status !== 429 && status !== 503) {
            outcome.errors.push(`message ${k}: HTTP ${status} ${JSON.stringify(json).slice(0, 200)}`)
            return
          }
        } catch (err) {
          if (attempt === MAX_ATTEMPTS) outcome.errors.push(`message ${k}: ${(err as Error).message}`)
        }
        outcome.retries++
        await sleep(RETRY_DELAY_MS)
      }
      outcome.errors.push(`message ${k}: not acknowledged after ${MAX_ATTEMPTS} attempts`)
    })())
  }
  await Promise.all(sends)
  return outcome
}

export async function runPushPhase (options: PushPhaseOptions): Promise<PushPhaseResult> {
  const { pool, userIds, seconds } = options
  const phones = userIds.length
  const keys: string[] = []
  for (const userId of userIds) {
    const minted = await mintIngestKey(pool, userId, 'bench push phone', 1000)
    if (minted.status !== 'minted') throw new Error(`push: could not mint an ingest key for user ${userId}: ${minted.status}`)
    keys.push(minted.key.key)
  }
  options.say(`push: starting the service, then ${phones} Sensor Logger phones pushing 1 message (${PUSH_READINGS_PER_MESSAGE} readings) a second for ${seconds} s...`)
  const server = await options.startService()
  let outcomes: PhoneOutcome[]
  const startAt = Date.now() + 300
  try {
    outcomes = await Promise.all(keys.map((key, i) =>
      runPhone(`${server.baseUrl}/ingest/sensor-logger/${key}`, startAt, Math.floor(i * PUSH_INTERVAL_MS / phones), seconds)))
  } finally {
    await server.stop()
  }
  const latencies = outcomes.flatMap(phone => phone.latenciesMs)
  const readingsAcked = outcomes.reduce((total, phone) => total + phone.readingsAcked, 0)
  const lastAck = Math.max(startAt, ...outcomes.map(phone => phone.lastAckAt))
  const acked = new Map<number, number>()
  for (const phone of outcomes) if (phone.sessionId !== undefined) acked.set(phone.sessionId, phone.readingsAcked)
  const verification = await verifySessions(pool, acked)
  const serverLog = await options.scanLog(server.logFile)
  const errors = outcomes.flatMap(phone => phone.errors)
  const result: PushPhaseResult = {
    phones,
    seconds,
    offeredReadingsPerSecond: phones * PUSH_READINGS_PER_MESSAGE * (1000 / PUSH_INTERVAL_MS),
    messagesSent: outcomes.reduce((total, phone) => total + phone.messagesSent, 0),
    messagesAcked: latencies.length,
    readingsAcked,
    readingsPerSecond: readingsAcked / Math.max(0.001, (lastAck - startAt) / 1000),
    ackLatencyMs: summarizeLatencies(latencies),
    retries: outcomes.reduce((total, phone) => total + phone.retries, 0),
    errors: errors.length,
    errorSamples: errors.slice(0, 10),
    serverLogErrors: serverLog.errors,
    serverLogSamples: serverLog.samples,
    verification,
    serverLog: server.logFile
  }
  const { p50, p99 } = result.ackLatencyMs
  options.say(`  ${Math.round(result.readingsPerSecond).toLocaleString('en')} readings/s, ack p50/p99 ${p50.toFixed(1)}/${p99.toFixed(1)} ms, ` +
    `${result.messagesAcked}/${result.messagesSent} messages acked, ${result.retries} retries, ${result.errors} errors, stored = acked: ${verification.ok}`)
  return result
}
