/**
 * Signs in with a private key (POST /auth/challenge, then /auth/verify) and
 * records a short synthetic session over the WebSocket, printing every event
 * the server sends. See examples/README.md.
 *
 *   npx tsx examples/record-session.ts --new-key ethereum
 *   PRIVATE_KEY=0x... npx tsx examples/record-session.ts --url http://localhost:3000 --batches 3
 *   PRIVATE_KEY=0x... npx tsx examples/record-session.ts --binary   (batches as binary CBOR frames)
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import { parseArgs } from 'node:util'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { keccak_256 as keccak256 } from '@noble/hashes/sha3.js'
import { base58 } from '@scure/base'
import { encode as encodeCbor } from 'cbor-x'
import WebSocket from 'ws'

interface Signer {
  publicKey: string
  sign: (message: string) => string
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex')

function ethereumSigner (secretKey: Uint8Array): Signer {
  const address = '0x' + hex(keccak256(secp256k1.getPublicKey(secretKey, false).subarray(1)).subarray(12))
  return {
    publicKey: address,
    // EIP-191 personal_sign, what a wallet's signMessage does.
    sign (message) {
      const body = Buffer.from(message, 'utf8')
      const digest = keccak256(Buffer.concat([Buffer.from(`\x19Ethereum Signed Message:\n${body.length}`), body]))
      const signature = secp256k1.sign(digest, secretKey, { prehash: false, format: 'recovered' })
      // noble returns recovery|r|s; Ethereum sends r|s|v with v = 27 + recovery.
      return '0x' + hex(signature.subarray(1)) + (27 + (signature[0] as number)).toString(16)
    }
  }
}

function ed25519Signer (privateKey: KeyObject): Signer {
  const raw = Buffer.from(createPublicKey(privateKey).export({ format: 'jwk' }).x as string, 'base64url')
  return {
    publicKey: `ed25519:${base58.encode(raw)}`,
    // Plain Ed25519 over the message's UTF-8 bytes (not NEP-413).
    sign: message => sign(null, Buffer.from(message, 'utf8'), privateKey).toString('hex')
  }
}

// PKCS#8 wrapping of a 32-byte Ed25519 seed, so node:crypto can load it.
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')

/** `0x` + 64 hex digits: an Ethereum secret key. `ed25519:<base58>`: a NEAR secret key (seed, or seed + public key). */
function signerFromPrivateKey (text: string): Signer {
  if (/^0x[0-9a-fA-F]{64}$/.test(text)) return ethereumSigner(Buffer.from(text.slice(2), 'hex'))
  if (text.startsWith('ed25519:')) {
    const bytes = base58.decode(text.slice('ed25519:'.length))
    if (bytes.length === 32 || bytes.length === 64) {
      const seed = Buffer.from(bytes.subarray(0, 32))
      return ed25519Signer(createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' }))
    }
  }
  throw new Error('PRIVATE_KEY must be 0x + 64 hex digits (Ethereum) or ed25519:<base58> (NEAR)')
}

function printNewKey (scheme: string): void {
  if (scheme === 'ethereum') {
    const secretKey = secp256k1.utils.randomSecretKey()
    console.log(`PRIVATE_KEY=0x${hex(secretKey)}\npublic key (register this): ${ethereumSigner(secretKey).publicKey}`)
    return
  }
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32)
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url')
  console.log(`PRIVATE_KEY=ed25519:${base58.encode(Buffer.concat([seed, raw]))}\npublic key (register this): ed25519:${base58.encode(raw)}`)
}

async function postJson<T> (baseUrl: string, path: string, body: unknown): Promise<T> {
  const response = await fetch(new URL(path, baseUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })
  const json = await response.json() as T & { error?: string, message?: string }
  if (!response.ok) throw new Error(`${path}: ${response.status} ${json.error}: ${json.message}`)
  return json
}

async function signIn (baseUrl: string, signer: Signer): Promise<string> {
  const challenge = await postJson<{ message: string }>(baseUrl, '/auth/challenge', { publicKey: signer.publicKey })
  console.log(`challenge to sign:\n${challenge.message}\n`)
  const { accessToken, user } = await postJson<{ accessToken: string, user: { id: number, email: string } }>(
    baseUrl, '/auth/verify', { publicKey: signer.publicKey, signature: signer.sign(challenge.message) })
  console.log(`signed in as user ${user.id} (${user.email})`)
  return accessToken
}

const SENSORS = ['Accelerometer', 'Gyroscope', 'Magnetometer'] as const
const SAMPLE_INTERVAL_MS = 20

/** One batch of synthetic readings: the three sensors sampled together at 50 Hz. */
function syntheticBatch (batchId: number, size: number, startedAt: number) {
  return Array.from({ length: size }, (_, i) => {
    const n = batchId * size + i
    const t = Math.floor(n / SENSORS.length) * SAMPLE_INTERVAL_MS
    const phase = t / 1000
    return {
      timestamp: startedAt + t,
      sensor: SENSORS[n % SENSORS.length],
      xAxis: Math.sin(phase),
      yAxis: Math.cos(phase),
      zAxis: 9.81 + 0.1 * Math.sin(3 * phase)
    }
  })
}

/** The subprotocol that asks the server for binary batches (docs/protocol.md, "Binary batches"). */
const BINARY_BATCHES = 'motion-ingest.cbor.v1'

/**
 * The same readings as a binary frame: one CBOR map whose readings are
 * columns of RFC 8746 typed arrays, timestamps as integer microseconds after
 * a base, sensors as codes (their index in SENSORS), axes as float64.
 */
function binaryBatchFrame (batchId: number, readings: ReturnType<typeof syntheticBatch>): Uint8Array {
  const base = readings[0]!.timestamp * 1000
  return encodeCbor({
    event: 'write_sensor_readings_batch',
    data: {
      batch_id: batchId,
      sensor_readings: {
        timestampBase: base,
        timestamp: Int32Array.from(readings, reading => reading.timestamp * 1000 - base),
        sensor: Uint8Array.from(readings, reading => SENSORS.indexOf(reading.sensor!)),
        xAxis: Float64Array.from(readings, reading => reading.xAxis),
        yAxis: Float64Array.from(readings, reading => reading.yAxis),
        zAxis: Float64Array.from(readings, reading => reading.zAxis)
      }
    }
  })
}

function record (baseUrl: string, token: string, batchSize: number, batchCount: number, binary: boolean): Promise<number> {
  const wsUrl = new URL('/ws', baseUrl)
  wsUrl.protocol = wsUrl.protocol === 'https:' ? 'wss:' : 'ws:'
  const socket = new WebSocket(wsUrl, binary ? [BINARY_BATCHES] : [], { headers: { authorization: `Bearer ${token}` } })
  const send = (event: string, data: object, summary = JSON.stringify(data)) => {
    console.log(`-> ${event} ${summary}`)
    socket.send(JSON.stringify({ event, data }))
  }
  const createSession = () => send('create_session', { metadata: { device: 'example client', appVersion: 'record-session.ts', activity: 'test', notes: 'synthetic readings' } })

  return new Promise(resolve => {
    let acked = 0
    let restarting = false
    let exitCode = 1
    const finish = (code: number) => {
      exitCode = code
      socket.close(1000, 'done')
    }
    const timer = setTimeout(() => {
      console.error('no answer within 30 s; giving up')
      socket.terminate()
    }, 30_000)

    socket.on('open', () => {
      // A server from before binary batches may echo the subprotocol yet refuse binary frames: see binary_frames_not_supported below.
      if (binary) console.log(socket.protocol === BINARY_BATCHES ? `binary batches: subprotocol ${BINARY_BATCHES} agreed` : 'binary batches: not offered by the server; sending JSON')
      createSession()
    })
    socket.on('unexpected-response', (_request, response) => {
      // Without this listener ws reports only the status; the body says why (401, 403 for admins, 503 when full).
      let body = ''
      response.on('data', (chunk: Buffer) => { body += chunk })
      response.on('end', () => {
        console.error(`upgrade refused: HTTP ${response.statusCode} ${body}`)
        socket.terminate()
      })
    })
    socket.on('message', raw => {
      const { event, data } = JSON.parse(String(raw)) as { event: string, data: Record<string, unknown> }
      console.log(`<- ${event} ${JSON.stringify(data)}`)
      switch (event) {
        case 'session_created': {
          const startedAt = Date.now()
          // Batches may be sent before earlier acks arrive; acks come back in order.
          for (let batchId = 0; batchId < batchCount; batchId++) {
            const readings = syntheticBatch(batchId, batchSize, startedAt)
            if (binary && socket.protocol === BINARY_BATCHES) {
              const frame = binaryBatchFrame(batchId, readings)
              console.log(`-> write_sensor_readings_batch (binary, ${frame.length} bytes of CBOR) {"batch_id":${batchId},"sensor_readings":{${batchSize} readings as columns}}`)
              socket.send(frame, { binary: true })
            } else {
              send('write_sensor_readings_batch', { batch_id: batchId, sensor_readings: readings },
                `{"batch_id":${batchId},"sensor_readings":[${batchSize} readings]}`)
            }
          }
          break
        }
        case 'session_already_exist':
          // A previous run left a session open. A phone would resume it; this demo closes it and starts afresh.
          restarting = true
          send('destroy_session', {})
          break
        case 'sensor_readings_batch_written':
          if (++acked === batchCount) send('destroy_session', { totalSensorReadingsSent: batchCount * batchSize })
          break
        case 'session_destroyed':
          if (restarting) {
            restarting = false
            createSession()
          } else {
            finish(data.integrity === 'ok' ? 0 : 1)
          }
          break
        default:
          // invalid_sensor_readings_batch_size, invalid_sensor_reading_schema, session_not_found, errors.
          finish(1)
      }
    })
    socket.on('error', err => console.error(`socket error: ${err.message}`))
    socket.on('close', (code, reason) => {
      clearTimeout(timer)
      console.log(`socket closed: ${code} ${reason.toString()}`)
      resolve(exitCode)
    })
  })
}

async function main (): Promise<number> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string', default: process.env.MOTION_INGEST_URL ?? 'http://localhost:3000' },
      batches: { type: 'string', default: '3' },
      'new-key': { type: 'string' },
      binary: { type: 'boolean', default: false }
    }
  })
  if (values['new-key']) {
    if (!['ethereum', 'ed25519'].includes(values['new-key'])) throw new Error('--new-key takes ethereum or ed25519')
    printNewKey(values['new-key'])
    return 0
  }
  if (!process.env.PRIVATE_KEY) throw new Error('Set PRIVATE_KEY (make one with --new-key ethereum|ed25519 and register its public key)')
  const batchCount = Number(values.batches)
  if (!Number.isInteger(batchCount) || batchCount < 1) throw new Error('--batches must be a positive integer')

  const signer = signerFromPrivateKey(process.env.PRIVATE_KEY.trim())
  const status = await (await fetch(new URL('/status', values.url))).json() as { sensorReadingsBatchSize: number }
  console.log(`server batch size: ${status.sensorReadingsBatchSize} readings`)
  const token = await signIn(values.url, signer)
  return record(values.url, token, status.sensorReadingsBatchSize, batchCount, values.binary)
}

main().then(code => { process.exitCode = code }, (err: Error) => {
  console.error(err.message)
  process.exitCode = 1
})
