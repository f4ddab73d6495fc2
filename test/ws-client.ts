import type { FastifyInstance } from 'fastify'
import WebSocket from 'ws'

export interface Frame {
  event: string
  data: Record<string, unknown>
}

/** A real `ws` client over TCP that queues what the server sends. */
export class TestPhone {
  readonly frames: Frame[] = []
  private waiters: Array<() => void> = []
  closeCode: number | undefined
  closeReason = ''
  readonly closed: Promise<void>

  private constructor (readonly socket: WebSocket) {
    socket.on('message', data => {
      this.frames.push(JSON.parse(data.toString()))
      this.wake()
    })
    this.closed = new Promise(resolve => socket.on('close', (code, reason) => {
      this.closeCode = code
      this.closeReason = reason.toString()
      this.wake()
      resolve()
    }))
  }

  static async connect (url: string, headers: Record<string, string> = {}): Promise<TestPhone> {
    const socket = new WebSocket(url, { headers })
    const phone = new TestPhone(socket)
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve())
      socket.once('error', reject)
      socket.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { statusCode: res.statusCode })))
    })
    return phone
  }

  send (event: string, data: unknown = {}): void {
    this.socket.send(JSON.stringify({ event, data }))
  }

  sendRaw (data: string | Buffer, binary = false): void {
    this.socket.send(data, { binary })
  }

  /** The next frame, failing after timeoutMs. */
  async next (timeoutMs = 10_000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs
    while (this.frames.length === 0) {
      if (this.closeCode !== undefined) throw new Error(`socket closed (${this.closeCode} ${this.closeReason}) while waiting for a frame`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error('no frame within timeout')
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
    return this.frames.shift() as Frame
  }

  /** The next frame, asserting its event name. */
  async expect (event: string, timeoutMs?: number): Promise<Record<string, unknown>> {
    const frame = await this.next(timeoutMs)
    if (frame.event !== event) throw new Error(`expected ${event}, got ${JSON.stringify(frame).slice(0, 500)}`)
    return frame.data
  }

  async close (): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return
    this.socket.close()
    await this.closed
  }

  terminate (): void {
    this.socket.terminate()
  }

  private wake (): void {
    const waiters = this.waiters
    this.waiters = []
    for (const wake of waiters) wake()
  }
}

/** The app's ws:// URL; the app must be listening. */
export function wsUrl (app: FastifyInstance, query = ''): string {
  const address = app.server.address()
  if (!address || typeof address === 'string') throw new Error('app is not listening')
  return `ws://127.0.0.1:${address.port}/ws${query}`
}

const SENSOR_NAMES = ['Accelerometer', 'Gyroscope', 'Magnetometer'] as const

export interface Reading {
  timestamp: string | number
  sensor: string
  xAxis: number
  yAxis: number
  zAxis: number
}

/** n readings rotating through the sensors, 10 ms apart from startMs, with values that exercise float round trips. */
export function makeReadings (n: number, startMs = Date.now() - 60_000, seed = 1): Reading[] {
  return Array.from({ length: n }, (_, i) => ({
    timestamp: startMs + Math.floor(i / 3) * 10,
    sensor: SENSOR_NAMES[i % 3] as string,
    xAxis: Math.sin(seed * 1000 + i) * 9.81,
    yAxis: Math.cos(seed * 1000 + i) / 3,
    zAxis: (seed + i) * 0.1
  }))
}
