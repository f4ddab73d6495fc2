/**
 * A real HAProxy in front of local service instances, run with the shipped
 * configuration (deploy/haproxy/haproxy.cfg) plus a servers file of its own:
 * used by `npm run bench -- --instances N` and by the load-balancer test.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { accessSync, constants, createWriteStream } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

export const HAPROXY_CONFIG = fileURLToPath(new URL('../deploy/haproxy/haproxy.cfg', import.meta.url))
const CANDIDATES = ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy', '/usr/bin/haproxy', '/usr/local/bin/haproxy']
export const INSTALL_COMMAND = 'apt-get install -y haproxy'

const run = promisify(execFile)

const executable = (file: string) => {
  try {
    accessSync(file, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The haproxy binary: HAPROXY_BIN, else `haproxy` on PATH, else where packages put it; undefined when there is none. */
export function findHaproxy (): string | undefined {
  // Set but not there: no HAProxy, rather than one the caller did not ask for.
  if (process.env.HAPROXY_BIN) return executable(process.env.HAPROXY_BIN) ? process.env.HAPROXY_BIN : undefined
  const onPath = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map(dir => path.join(dir, 'haproxy'))
  return [...onPath, ...CANDIDATES].find(executable)
}

/** HAProxy is not installed and this process may not install it; the message says how. */
export class HaproxyMissingError extends Error {}

/**
 * The haproxy binary; when missing, installs Debian's package if this process
 * is root (apt-get update first when the package lists are stale), else fails
 * with the command to run.
 */
export async function ensureHaproxy (say: (line: string) => void): Promise<string> {
  const found = findHaproxy()
  if (found) return found
  if (process.getuid?.() !== 0) throw new HaproxyMissingError(`HAProxy is not installed. Install it with: sudo ${INSTALL_COMMAND}`)
  say(`HAProxy is not installed; running ${INSTALL_COMMAND}...`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  try {
    await run('apt-get', ['install', '-y', 'haproxy'], { env })
  } catch {
    await run('apt-get', ['update'], { env })
    await run('apt-get', ['install', '-y', 'haproxy'], { env })
  }
  const installed = findHaproxy()
  if (!installed) throw new Error(`${INSTALL_COMMAND} ran, but no haproxy binary was found`)
  return installed
}

export interface BackendServer {
  name: string
  port: number
}

export interface HaproxyOptions {
  binary: string
  /** Port HAProxy listens on (127.0.0.1). */
  port: number
  servers: BackendServer[]
  /** HAProxy's stdout (traffic log) and stderr (server state changes) go here. */
  logFile: string
  /** Most connections (two per phone); HAProxy needs twice as many open files. */
  maxConnections?: number
}

/** One line of HAProxy's `show stat` for a server. */
export interface ServerStat {
  name: string
  /** UP, DOWN, MAINT, "UP 1/2" while rising... */
  status: string
  /** Connections open to it now. */
  current: number
  /** Connections it has been given since the start. */
  total: number
}

export interface Haproxy {
  pid: number
  baseUrl: string
  wsUrl: string
  /** Lines HAProxy wrote on stderr: alerts, warnings, "Server motion_ingest/instance-1 is DOWN". */
  notices: () => string[]
  /** The backend's servers as HAProxy sees them now (from its stats socket). */
  serverStats: () => Promise<ServerStat[]>
  /** Resolves when HAProxy marks the server down (or rejects after timeoutMs). */
  waitForDown: (name: string, timeoutMs?: number) => Promise<void>
  stop: () => Promise<void>
}

/** The servers file loaded after deploy/haproxy/haproxy.cfg, plus a stats socket for the harness. */
export function serversConfig (servers: BackendServer[], statsSocket: string): string {
  return [
    'global',
    `  stats socket ${statsSocket} mode 600 level operator`,
    '',
    'backend motion_ingest',
    ...servers.map(server => `  server ${server.name} 127.0.0.1:${server.port}`),
    ''
  ].join('\n')
}

/**
 * Starts HAProxy in the foreground with the shipped configuration, listening
 * on 127.0.0.1:port, and waits until GET /health answers through it.
 */
export async function startHaproxy (options: HaproxyOptions): Promise<Haproxy> {
  const dir = await mkdtemp(path.join(tmpdir(), 'motion-ingest-haproxy-'))
  const statsSocket = path.join(dir, 'stats.sock')
  const servers = path.join(dir, 'servers.cfg')
  await writeFile(servers, serversConfig(options.servers, statsSocket))
  await mkdir(path.dirname(options.logFile), { recursive: true })
  const log = createWriteStream(options.logFile)
  const child = spawn(options.binary, ['-db', '-f', HAPROXY_CONFIG, '-f', servers], {
    env: {
      PATH: process.env.PATH ?? '',
      MOTION_INGEST_LB_BIND: `127.0.0.1:${options.port}`,
      MOTION_INGEST_LB_MAXCONN: String(options.maxConnections ?? 4000)
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const notices: string[] = []
  const downWaiters = new Set<() => void>()
  child.stdout?.pipe(log, { end: false })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    log.write(chunk)
    notices.push(...chunk.split('\n').filter(Boolean))
    for (const wake of downWaiters) wake()
  })
  const exited = once(child, 'exit')
  const baseUrl = `http://127.0.0.1:${options.port}`
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await exited
    }
    log.end()
    await rm(dir, { recursive: true, force: true })
  }
  try {
    await waitForHealth(child, baseUrl, notices)
  } catch (err) {
    await stop()
    throw err
  }
  return {
    pid: child.pid as number,
    baseUrl,
    wsUrl: `ws://127.0.0.1:${options.port}/ws`,
    notices: () => [...notices],
    serverStats: async () => parseServerStats(await askStatsSocket(statsSocket, 'show stat')),
    waitForDown: (name, timeoutMs = 15_000) => new Promise<void>((resolve, reject) => {
      const pattern = new RegExp(`Server motion_ingest/${name} is DOWN`)
      const check = () => {
        if (!notices.some(line => pattern.test(line))) return
        clearTimeout(timer)
        downWaiters.delete(check)
        resolve()
      }
      const timer = setTimeout(() => {
        downWaiters.delete(check)
        reject(new Error(`HAProxy did not mark ${name} down within ${timeoutMs} ms; it said: ${notices.join(' | ')}`))
      }, timeoutMs)
      downWaiters.add(check)
      check()
    }),
    stop
  }
}

async function waitForHealth (child: ChildProcess, baseUrl: string, notices: string[], timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`HAProxy exited with code ${child.exitCode}: ${notices.join('\n')}`)
    try {
      const response = await fetch(`${baseUrl}/health`)
      await response.body?.cancel()
      if (response.ok) return
    } catch {
      // not listening yet
    }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  throw new Error(`GET /health through HAProxy did not answer 200 within ${timeoutMs} ms: ${notices.join('\n')}`)
}

async function askStatsSocket (socketPath: string, command: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    const socket = connect(socketPath)
    let text = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => { text += chunk })
    socket.on('end', () => resolve(text))
    socket.on('error', reject)
    socket.end(`${command}\n`)
  })
}

/** `show stat` CSV -> the motion_ingest backend's servers. */
export function parseServerStats (csv: string): ServerStat[] {
  const [header, ...lines] = csv.split('\n').filter(line => line.trim() !== '')
  const columns = (header ?? '').replace(/^# /, '').split(',')
  const at = (name: string) => columns.indexOf(name)
  const stats: ServerStat[] = []
  for (const line of lines) {
    const cells = line.split(',')
    const server = cells[at('svname')] ?? ''
    if (cells[at('pxname')] !== 'motion_ingest' || server === 'FRONTEND' || server === 'BACKEND') continue
    stats.push({ name: server, status: cells[at('status')] ?? '', current: Number(cells[at('scur')]), total: Number(cells[at('stot')]) })
  }
  return stats
}
