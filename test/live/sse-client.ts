import type { FastifyInstance } from 'fastify'
import { request, type IncomingMessage } from 'node:http'

export interface SseEvent {
  event: string
  data: unknown
}

/** The app's http:// origin; the app must be listening. */
export function httpOrigin (app: FastifyInstance): string {
  const address = app.server.address()
  if (!address || typeof address === 'string') throw new Error('app is not listening')
  return `http://127.0.0.1:${address.port}`
}

/**
 * A Server-Sent Events reader over fetch, as the web page reads /live: the
 * token in the Authorization header, frames parsed from the byte stream.
 */
export class SseReader {
  readonly events: SseEvent[] = []
  comments = 0
  ended = false
  private waiters: Array<() => void> = []
  private readonly done: Promise<void>

  private constructor (readonly response: IncomingMessage) {
    this.done = this.read().catch(() => {}).finally(() => {
      this.ended = true
      this.wake()
    })
  }

  /**
   * Opens the stream with node:http rather than fetch: after an aborted
   * response, fetch's pool opens a spare connection that sends nothing,
   * and the server's close() would wait for it.
   */
  static async open (url: string, headers: Record<string, string>): Promise<SseReader> {
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      request(url, { headers, agent: false }, resolve).on('error', reject).end()
    })
    if (response.statusCode !== 200) {
      const chunks: Buffer[] = []
      for await (const chunk of response) chunks.push(chunk as Buffer)
      throw Object.assign(new Error(`HTTP ${response.statusCode}: ${Buffer.concat(chunks).toString()}`), { status: response.statusCode })
    }
    return new SseReader(response)
  }

  /** Waits until an event passes the test, failing after timeoutMs. */
  async waitFor (test: (event: SseEvent) => boolean, timeoutMs = 5000): Promise<SseEvent> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const found = this.events.find(test)
      if (found) return found
      if (this.ended) throw new Error(`stream ended without the event; got ${JSON.stringify(this.events).slice(0, 800)}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no such event within ${timeoutMs} ms; got ${JSON.stringify(this.events).slice(0, 800)}`)
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  /** Resolves when the server ends the stream. */
  async ending (timeoutMs = 5000): Promise<void> {
    await Promise.race([this.done, new Promise((_resolve, reject) => setTimeout(() => reject(new Error('stream did not end')), timeoutMs))])
  }

  close (): void {
    this.response.destroy()
  }

  private async read (): Promise<void> {
    let buffer = ''
    this.response.setEncoding('utf8')
    for await (const chunk of this.response) {
      buffer += chunk as string
      let end: number
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        this.take(buffer.slice(0, end))
        buffer = buffer.slice(end + 2)
      }
    }
  }

  private take (frame: string): void {
    let event = 'message'
    const data: string[] = []
    for (const line of frame.split('\n')) {
      if (line.startsWith(':')) this.comments++
      else if (line.startsWith('event: ')) event = line.slice(7)
      else if (line.startsWith('data: ')) data.push(line.slice(6))
    }
    if (data.length > 0) this.events.push({ event, data: JSON.parse(data.join('\n')) })
    this.wake()
  }

  private wake (): void {
    const waiters = this.waiters
    this.waiters = []
    for (const wake of waiters) wake()
  }
}
