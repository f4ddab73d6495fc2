import { request, type IncomingMessage } from 'node:http'
import type { Pool } from 'pg'
import { issueAccessToken } from '../src/db/access-tokens-repository.js'
import { insertUser } from '../src/db/users-repository.js'

/** What the watchers of a phase saw. */
export interface LiveWatchResult {
  streams: number
  /** `batch` events received over all streams. */
  notices: number
  /** Sessions named in them (per stream the same: an admin sees every session). */
  sessions: number
}

/** An admin who may watch every session, with a token for GET /live. */
export async function createWatcherToken (pool: Pool): Promise<string> {
  const tag = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`
  const user = await insertUser(pool, { name: `Bench watcher ${tag}`, email: `bench-watcher-${tag}@bench.test`, publicKey: `bench-watcher-${tag}`, role: 'ADMIN' })
  return (await issueAccessToken(pool, user.id, 24 * 3600)).accessToken
}

/**
 * Open GET /live streams, as browsers on the live page would hold them
 * while phones record: they count the notices and the sessions they name.
 */
export class LiveWatchers {
  private notices = 0
  private readonly sessions = new Set<number>()

  private constructor (private readonly responses: IncomingMessage[]) {
    for (const response of responses) this.read(response)
  }

  static async open (baseUrl: string, token: string, streams: number): Promise<LiveWatchers> {
    const responses = await Promise.all(Array.from({ length: streams }, () => new Promise<IncomingMessage>((resolve, reject) => {
      request(`${baseUrl}/live`, { headers: { authorization: `Bearer ${token}` }, agent: false }, response => {
        if (response.statusCode === 200) resolve(response)
        else reject(new Error(`GET /live answered ${response.statusCode}`))
      }).on('error', reject).end()
    })))
    return new LiveWatchers(responses)
  }

  close (): LiveWatchResult {
    for (const response of this.responses) response.destroy()
    return { streams: this.responses.length, notices: this.notices, sessions: this.sessions.size }
  }

  private read (response: IncomingMessage): void {
    let buffer = ''
    response.setEncoding('utf8')
    response.on('error', () => {})
    response.on('data', (chunk: string) => {
      buffer += chunk
      let end: number
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        if (!frame.startsWith('event: batch\n')) continue
        this.notices++
        const data = /\ndata: (.*)/.exec(frame)?.[1]
        if (data) this.sessions.add((JSON.parse(data) as { sessionId: number }).sessionId)
      }
    })
  }
}
