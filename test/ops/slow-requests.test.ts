import http from 'node:http'
import { connect, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { generateReadings, insertSession } from '../fixtures/sessions.js'
import { bearer, build, createTestDatabase, createUserWithToken } from '../helper.js'
import { TestPhone, wsUrl } from '../ws-client.js'

const TIMEOUT_MS = 1500
const READINGS = 200_000

const databaseUrl = await createTestDatabase()
const app = await build(databaseUrl, { HTTP_REQUEST_TIMEOUT_MS: String(TIMEOUT_MS) })
await app.listen({ port: 0, host: '127.0.0.1' })
const { port } = app.server.address() as AddressInfo
const owner = await createUserWithToken(app, 'BETATESTER')

interface Trickle {
  /** Milliseconds from connecting until the server closed the connection. */
  closedAfterMs: number
  received: string
}

/** Sends `head` at once, then one byte of `drip` every 200 ms, until the server closes the connection. */
function trickle (head: string, drip: string): Promise<Trickle> {
  return new Promise((resolve, reject) => {
    const startedAt = Date.now()
    const socket: Socket = connect(port, '127.0.0.1', () => socket.write(head))
    let received = ''
    let sent = 0
    const timer = setInterval(() => {
      if (sent < drip.length && socket.writable) socket.write(drip[sent++] as string)
    }, 200)
    socket.on('data', chunk => { received += chunk.toString() })
    socket.on('error', () => {}) // a reset after the 408 is the server closing, which 'close' reports
    socket.on('close', () => {
      clearInterval(timer)
      resolve({ closedAfterMs: Date.now() - startedAt, received })
    })
    setTimeout(() => {
      clearInterval(timer)
      socket.destroy()
      reject(new Error(`the connection was still open after 10 s; received: ${received}`))
    }, 10_000)
  })
}

function expectTimedOut ({ closedAfterMs, received }: Trickle) {
  expect(closedAfterMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 100)
  // The deadline plus Node's check interval (a tenth of it here), with room for a busy machine.
  expect(closedAfterMs).toBeLessThan(3000)
  expect(received).toMatch(/^HTTP\/1\.1 408 /)
  expect(JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4))).toEqual({ error: 'REQUEST_TIMEOUT', message: expect.any(String) })
}

describe('HTTP_REQUEST_TIMEOUT_MS', () => {
  it('closes a connection trickling its headers at the deadline, with 408 in the service\'s shape', async () => {
    expectTimedOut(await trickle('GET /health HTTP/1.1\r\nHost: localhost\r\n', 'X-Slow: ' + 'a'.repeat(100)))
  })

  it('closes a connection trickling its body at the deadline', async () => {
    const body = JSON.stringify({ email: 'slow@example.test', publicKey: 'k'.repeat(100) })
    const head = `POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`
    expectTimedOut(await trickle(head, body))
  })

  it('leaves an open WebSocket alone: it records past the deadline', async () => {
    const phone = await TestPhone.connect(wsUrl(app), bearer(owner.token))
    try {
      await new Promise(resolve => setTimeout(resolve, TIMEOUT_MS + 1000))
      phone.send('create_session', { metadata: {} })
      await phone.expect('session_created')
    } finally {
      await phone.close()
    }
  })

  it('leaves a download alone that streams for longer than the deadline', async () => {
    const session = await insertSession(app.db, owner.user.id)
    await generateReadings(app.db, session, READINGS)
    const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: `/sessions/${session}/readings.csv`, headers: bearer(owner.token) }, resolve).on('error', reject)
    })
    expect(response.statusCode).toBe(200)
    let lines = 0
    const firstChunk = new Promise<void>(resolve => response.once('data', () => {
      // Unread from here, the response stalls on the socket well past the deadline.
      response.pause()
      resolve()
    }))
    response.on('data', (chunk: Buffer) => { for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++ })
    await firstChunk
    await new Promise(resolve => setTimeout(resolve, TIMEOUT_MS + 1000))
    expect(response.complete).toBe(false)
    response.resume()
    await new Promise((resolve, reject) => response.on('end', resolve).on('error', reject))
    expect(response.complete).toBe(true)
    expect(lines).toBe(READINGS + 1) // the header line, then every reading
  })
})
