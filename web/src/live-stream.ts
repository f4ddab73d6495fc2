import { authHeaders } from './api.js'

export type StreamState = 'connecting' | 'open' | 'behind' | 'retrying'

export interface LiveStreamHandlers {
  onEvent: (event: string, data: unknown) => void
  onState: (state: StreamState, detail?: string) => void
}

/** Longer than the server's 15 s heartbeat: silence this long means the connection is dead. */
const SILENCE_MS = 40_000
const RETRY_MIN_MS = 1000
const RETRY_MAX_MS = 15_000

/**
 * GET /live read with fetch and a stream reader, so the token travels in
 * the Authorization header (EventSource cannot send one, and a token in a
 * URL ends up in logs). Reconnects by itself with backoff, and after a
 * silent connection.
 */
export class LiveStream {
  private controller: AbortController | undefined
  private stopped = false
  private retryMs = RETRY_MIN_MS
  private silence: ReturnType<typeof setTimeout> | undefined

  constructor (private readonly handlers: LiveStreamHandlers) {}

  start (): void {
    this.stopped = false
    this.connect().catch(() => {})
  }

  stop (): void {
    this.stopped = true
    clearTimeout(this.silence)
    this.controller?.abort()
  }

  private async connect (): Promise<void> {
    const controller = this.controller = new AbortController()
    this.handlers.onState('connecting')
    try {
      const response = await fetch('/live', { headers: authHeaders(), signal: controller.signal })
      if (!response.ok || !response.body) {
        const problem = await response.json().catch(() => ({})) as { message?: string }
        throw new Error(problem.message ?? `HTTP ${response.status}`)
      }
      this.retryMs = RETRY_MIN_MS
      this.handlers.onState('open')
      await this.read(response.body, controller)
      if (!this.stopped) this.handlers.onState('retrying', 'the stream ended')
    } catch (err) {
      if (this.stopped) return
      this.handlers.onState('retrying', (err as Error).message)
    } finally {
      clearTimeout(this.silence)
    }
    if (this.stopped) return
    setTimeout(() => { if (!this.stopped) this.connect().catch(() => {}) }, this.retryMs)
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS)
  }

  private async read (body: ReadableStream<Uint8Array>, controller: AbortController): Promise<void> {
    const reader = body.getReader()
    const decoder = new TextDecoder()
    let buffer = ''
    const watch = () => {
      clearTimeout(this.silence)
      this.silence = setTimeout(() => controller.abort(), SILENCE_MS)
    }
    watch()
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return
      watch()
      buffer += decoder.decode(value, { stream: true })
      let end: number
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        let event = 'message'
        const data: string[] = []
        for (const line of frame.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7)
          else if (line.startsWith('data: ')) data.push(line.slice(6))
        }
        if (data.length === 0) continue
        try {
          this.handlers.onEvent(event, JSON.parse(data.join('\n')))
        } catch {}
      }
    }
  }
}
