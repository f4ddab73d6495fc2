import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { PhoneMode, PhoneOptions, PhoneResult, PhoneUser } from './phone.js'
import type { WorkerReply, WorkerRequest } from './phone-worker.js'
import type { FrameFormat, TimestampFormat } from './readings.js'

const WORKER = fileURLToPath(new URL('./phone-worker.ts', import.meta.url))

export interface LoadOptions {
  mode: PhoneMode
  phones: number
  seconds: number
  window: number
  workers: number
  timestampFormat: TimestampFormat
  /** Batches as JSON text (default) or binary CBOR frames. */
  frames?: FrameFormat
  login: boolean
  baseUrl: string
  wsUrl: string
  /** One per phone. */
  users: PhoneUser[]
  timeoutMs: number
  /** Phones resume their sessions on a new socket when theirs drops (behind a load balancer). */
  resume?: boolean
}

export interface LoadRun {
  results: PhoneResult[]
  startAt: number
  endAt: number
  generatorEventLoopUtilization: number[]
  failedToStart: number
}

export interface LoadHooks {
  /** Called with the generator pids when every phone is connected, just before streaming starts. */
  beforeStart?: (generatorPids: number[]) => void
  /** Called when every phone has finished, before the generator processes exit. */
  afterDone?: (generatorPids: number[]) => void
}

class GeneratorProcess {
  readonly child: ChildProcess
  private readonly replies: WorkerReply[] = []
  private waiting: ((reply: WorkerReply) => void) | undefined
  private exited = false

  constructor () {
    this.child = fork(WORKER, [], { execArgv: ['--import', 'tsx'], serialization: 'advanced', stdio: 'inherit' })
    this.child.on('message', (reply: WorkerReply) => {
      if (this.waiting) {
        const resolve = this.waiting
        this.waiting = undefined
        resolve(reply)
      } else {
        this.replies.push(reply)
      }
    })
    this.child.once('exit', code => {
      this.exited = true
      this.waiting?.({ type: 'fatal', message: `generator process exited with code ${code}` })
    })
  }

  async ask (request: WorkerRequest): Promise<WorkerReply> {
    if (this.exited) return { type: 'fatal', message: 'generator process is gone' }
    const reply = new Promise<WorkerReply>(resolve => {
      const queued = this.replies.shift()
      if (queued) resolve(queued)
      else this.waiting = resolve
    })
    this.child.send(request)
    const answer = await reply
    if (answer.type === 'fatal') throw new Error(`generator failed: ${answer.message}`)
    return answer
  }

  async stop (): Promise<void> {
    if (this.exited) return
    const gone = new Promise(resolve => this.child.once('exit', resolve))
    this.child.send({ type: 'exit' } satisfies WorkerRequest)
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000)
    await gone
    clearTimeout(timer)
  }
}

/**
 * Runs `phones` phones spread over `workers` generator processes: every
 * phone connects and creates its session first, then all start together,
 * stream for `seconds`, drain their acks and destroy their sessions.
 */
export async function runLoad (options: LoadOptions, hooks: LoadHooks = {}): Promise<LoadRun> {
  if (options.users.length < options.phones) throw new Error(`runLoad needs ${options.phones} users, got ${options.users.length}`)
  const workers = Math.max(1, Math.min(options.workers, options.phones))
  const generators = Array.from({ length: workers }, () => new GeneratorProcess())
  try {
    const floodStartMs = Date.now() - 2 * 3600_000
    const assignments: PhoneOptions[][] = generators.map(() => [])
    for (let index = 0; index < options.phones; index++) {
      assignments[index % workers]!.push({
        index,
        baseUrl: options.baseUrl,
        wsUrl: options.wsUrl,
        user: options.users[index]!,
        login: options.login,
        mode: options.mode,
        window: options.window,
        timestampFormat: options.timestampFormat,
        frames: options.frames,
        timeoutMs: options.timeoutMs,
        floodStartMs,
        resume: options.resume
      })
    }
    const ready = await Promise.all(generators.map((generator, i) =>
      generator.ask({ type: 'prepare', phones: assignments[i]!, connectConcurrency: 25 })))
    const failedToStart = ready.reduce((sum, reply) => sum + (reply.type === 'ready' ? reply.failed : 0), 0)

    hooks.beforeStart?.(generators.map(generator => generator.child.pid as number))
    const startAt = Date.now() + 300
    const endAt = startAt + options.seconds * 1000
    const done = await Promise.all(generators.map(generator => generator.ask({ type: 'start', startAt, endAt })))
    hooks.afterDone?.(generators.map(generator => generator.child.pid as number))
    const results: PhoneResult[] = []
    const generatorEventLoopUtilization: number[] = []
    for (const reply of done) {
      if (reply.type !== 'done') continue
      results.push(...reply.results)
      generatorEventLoopUtilization.push(reply.eventLoopUtilization)
    }
    results.sort((a, b) => a.index - b.index)
    return { results, startAt, endAt, generatorEventLoopUtilization, failedToStart }
  } finally {
    await Promise.all(generators.map(generator => generator.stop()))
  }
}
