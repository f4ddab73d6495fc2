import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { createServer } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'

export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url))

export interface ServerProcessOptions {
  databaseUrl: string
  /** Extra environment for the service: ingest knobs and the like. They win over the bench's defaults. */
  env?: Record<string, string>
  /** File that receives the service's stdout and stderr. */
  logFile: string
  /** Folder for a V8 CPU profile (`node --cpu-prof`), written when the service exits. */
  cpuProfDir?: string
  startTimeoutMs?: number
  /**
   * 'compiled': `node dist/server.js`, what `npm start` runs (built once per bench process);
   * 'source': `node --import tsx src/server.ts`, no build step (about 40 MB more RSS, the compiler's).
   */
  code?: ServerCode
}

export type ServerCode = 'source' | 'compiled'

let compiled: Promise<void> | undefined

/** Compiles src/ into dist/ (tsc -p tsconfig.build.json), once per process. */
function ensureCompiled (): Promise<void> {
  compiled ??= new Promise((resolve, reject) => {
    const tsc = spawn(process.execPath, [path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    tsc.stdout?.on('data', chunk => { output += String(chunk) })
    tsc.stderr?.on('data', chunk => { output += String(chunk) })
    tsc.on('error', reject)
    tsc.on('exit', code => code === 0 ? resolve() : reject(new Error(`tsc -p tsconfig.build.json failed (${String(code)}):\n${output}`)))
  })
  return compiled
}

export interface ServerProcess {
  pid: number
  baseUrl: string
  wsUrl: string
  logFile: string
  /** The last lines the service printed, for error messages. */
  tail: () => string
  /** SIGTERM, then SIGKILL after the grace period; resolves with the exit code. */
  stop: () => Promise<number | null>
}

/** A port the OS considers free right now. */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

/**
 * Starts the service (`node dist/server.js` or `node --import tsx src/server.ts`) in its own process,
 * so it has an event loop and a /proc entry of its own, and waits until
 * GET /health answers.
 */
export async function startServerProcess (options: ServerProcessOptions): Promise<ServerProcess> {
  const port = await freePort()
  await mkdir(path.dirname(options.logFile), { recursive: true })
  const log = createWriteStream(options.logFile)
  const compiledCode = options.code === 'compiled'
  if (compiledCode) await ensureCompiled()
  const nodeArgs = compiledCode ? ['--enable-source-maps'] : ['--import', 'tsx']
  if (options.cpuProfDir) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`)
  const child = spawn(process.execPath, [...nodeArgs, compiledCode ? 'dist/server.js' : 'src/server.ts'], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      // Users are logged in by the thousand from one address; the limiter is not what is measured.
      AUTH_RATE_LIMIT_PER_MINUTE: '1000000',
      SENSOR_READINGS_BATCH_SIZE: '375',
      ...options.env,
      DATABASE_URL: options.databaseUrl,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: options.env?.LOG_LEVEL ?? 'warn'
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const lines: string[] = []
  const keep = (chunk: Buffer) => {
    log.write(chunk)
    lines.push(...chunk.toString('utf8').split('\n').filter(Boolean))
    if (lines.length > 40) lines.splice(0, lines.length - 40)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  const tail = () => lines.join('\n')
  const baseUrl = `http://127.0.0.1:${port}`

  try {
    await waitForHealth(child, baseUrl, options.startTimeoutMs ?? 60_000, tail)
  } catch (err) {
    await stopChild(child, exited)
    log.end()
    throw err
  }
  return {
    pid: child.pid as number,
    baseUrl,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    logFile: options.logFile,
    tail,
    stop: async () => {
      const code = await stopChild(child, exited)
      log.end()
      return code
    }
  }
}

async function waitForHealth (child: ChildProcess, baseUrl: string, timeoutMs: number, tail: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`The service exited with code ${child.exitCode} while starting:\n${tail()}`)
    try {
      const response = await fetch(`${baseUrl}/health`)
      await response.body?.cancel()
      if (response.ok) return
    } catch {
      // not listening yet
    }
    await sleep(100)
  }
  throw new Error(`The service did not become healthy within ${timeoutMs} ms:\n${tail()}`)
}

async function stopChild (child: ChildProcess, exited: Promise<number | null>): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  try {
    return await exited
  } finally {
    clearTimeout(timer)
  }
}
