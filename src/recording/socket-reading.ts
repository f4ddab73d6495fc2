import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'
import type { RecordingSocket } from './connection.js'

/** The libuv stream behind a net.Socket: Node's own pause and resume use these for sockets read into a fixed buffer. */
interface StreamHandle {
  reading?: boolean
  readStart?: () => number
  readStop?: () => number
}

const handleOf = (socket: Socket | undefined): StreamHandle | undefined =>
  (socket as unknown as { _handle?: StreamHandle } | undefined)?._handle

/**
 * Stops reading from the kernel at once. socket.pause() only stops 'data'
 * events: the socket goes on reading until its buffer passes the high-water
 * mark, one read of up to 64 KiB past it. With thousands of paused phones
 * under overload that was a frame or more each held in this process (120 MB
 * at 2,000 JSON phones); stopped here, unread bytes stay in the kernel and
 * TCP pushes back to the phone. Node does the same in pause() for sockets
 * that read into a fixed buffer; without a handle (a closed socket, another
 * Node) nothing happens and pause() alone applies.
 */
export function stopReading (socket: Socket | undefined): void {
  const handle = handleOf(socket)
  if (!handle?.reading || typeof handle.readStop !== 'function') return
  handle.reading = false
  handle.readStop()
}

/** Undoes stopReading; net.Socket's own resume() would not restart a read it did not stop. */
export function startReading (socket: Socket | undefined): void {
  const handle = handleOf(socket)
  if (!handle || handle.reading !== false || typeof handle.readStart !== 'function') return
  handle.reading = true
  const err = handle.readStart()
  if (err) socket?.destroy(new Error(`readStart failed (${err})`))
}

/** A ws WebSocket as a recording connection sees it, with pause() that stops the TCP read at once. */
export function recordingSocket (ws: WebSocket): RecordingSocket {
  const raw = (ws as unknown as { _socket?: Socket })._socket
  return {
    send: text => ws.send(text),
    close: (code, reason) => ws.close(code, reason),
    terminate: () => ws.terminate(),
    pause: () => {
      ws.pause()
      stopReading(raw)
    },
    resume: () => {
      ws.resume()
      if (!ws.isPaused) startReading(raw)
    },
    get bufferedAmount () { return ws.bufferedAmount },
    get protocol () { return ws.protocol }
  }
}
