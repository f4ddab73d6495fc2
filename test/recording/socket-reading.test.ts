import { once } from 'node:events'
import { createServer, connect, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { startReading, stopReading } from '../../src/recording/socket-reading.js'

const SENT = 4 * 1024 * 1024

/** A real TCP pair: the server side paused before a byte arrives, then 4 MiB sent by the client. */
async function pausedPair (stopAtOnce: boolean) {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address() as { port: number }
  const accepted = once(server, 'connection') as Promise<[Socket]>
  const client = connect(address.port, '127.0.0.1')
  const [socket] = await accepted
  let received = 0
  socket.on('data', chunk => { received += chunk.length })
  socket.pause()
  if (stopAtOnce) stopReading(socket)
  client.write(Buffer.alloc(SENT, 7))
  await sleep(300)
  return { server, client, socket, received: () => received }
}

describe('stopReading', () => {
  const cleanups: Array<() => void> = []
  afterEach(() => { for (const cleanup of cleanups.splice(0)) cleanup() })

  it('leaves unread bytes in the kernel, where pause() alone reads past the high-water mark', async () => {
    const paused = await pausedPair(false)
    const stopped = await pausedPair(true)
    for (const pair of [paused, stopped]) cleanups.push(() => { pair.client.destroy(); pair.socket.destroy(); pair.server.close() })

    // pause() stops 'data' events only: Node keeps reading into the socket's buffer.
    expect(paused.socket.readableLength).toBeGreaterThanOrEqual(paused.socket.readableHighWaterMark)
    // Stopped at once: nothing was read into this process.
    expect(stopped.socket.readableLength).toBe(0)
    expect(stopped.received()).toBe(0)

    // And reading starts again: every byte arrives, none twice.
    startReading(stopped.socket)
    stopped.socket.resume()
    while (stopped.received() < SENT) await sleep(20)
    expect(stopped.received()).toBe(SENT)
  })

  it('does nothing on a socket without a handle', () => {
    const socket = connect(1, '127.0.0.1')
    socket.on('error', () => {})
    socket.destroy()
    expect(() => { stopReading(socket); startReading(socket) }).not.toThrow()
    expect(() => { stopReading(undefined); startReading(undefined) }).not.toThrow()
  })
})
