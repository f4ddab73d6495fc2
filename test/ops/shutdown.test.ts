import { chmod, mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, it } from 'vitest'
import { freePort, killServerProcesses, startServerProcess, type ServerProcess } from '../fixtures/server-process.js'
import { TcpProxy } from '../fixtures/tcp-proxy.js'
import { embeddedPostgresBlockedFolder } from '../../src/db/startup/embedded-postgres.js'
import { createTestDatabase } from '../helper.js'

const databaseUrl = await createTestDatabase()
const proxies: TcpProxy[] = []
afterAll(async () => {
  await killServerProcesses()
  await Promise.all(proxies.map(proxy => proxy.close()))
})

async function startProxy (): Promise<TcpProxy> {
  const proxy = TcpProxy.forUrl(databaseUrl)
  proxies.push(proxy)
  await proxy.start()
  return proxy
}

const start = (url: string, env: Record<string, string> = {}) =>
  startServerProcess({ DATABASE_URL: url, LOG_LEVEL: 'info', ...env })

async function healthStatus (server: ServerProcess): Promise<number> {
  const response = await fetch(`${server.baseUrl}/health`)
  await response.text()
  return response.status
}

/**
 * Sends GET /health on a raw keep-alive connection and resolves once the
 * server has logged it: a request that is in flight when the signal comes.
 */
async function inFlightHealthCheck (server: ServerProcess) {
  const socket = net.connect(server.port, '127.0.0.1')
  let received = ''
  socket.setEncoding('utf8').on('data', chunk => { received += chunk })
  socket.on('error', () => {})
  await new Promise(resolve => socket.once('connect', resolve))
  const seen = new Set(server.logs)
  socket.write('GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n')
  await server.waitForLog(line => !seen.has(line) && line.msg === 'incoming request' && (line.req as { url?: string }).url === '/health')
  return { socket, received: () => received }
}

/** True when something accepts TCP connections on the port. */
function listening (port: number): Promise<boolean> {
  return new Promise(resolve => {
    const socket = net.connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

async function until (condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

describe.concurrent('server process shutdown', () => {
  it('exits 0 on SIGINT, logging JSON, within SHUTDOWN_GRACE_MS', async ({ expect }) => {
    const server = await start(databaseUrl, { SHUTDOWN_GRACE_MS: '5000' })
    expect(await healthStatus(server)).toBe(200)
    const signalled = Date.now()
    server.child.kill('SIGINT')
    expect(await server.exited).toEqual({ code: 0, signal: null })
    expect(Date.now() - signalled).toBeLessThan(5000)
    expect(server.logs.find(line => line.msg === 'Shutting down.')).toMatchObject({ signal: 'SIGINT', graceMs: 5000 })
    // By time, not by line: pino writes asynchronously and flushes synchronously at exit, so the last two lines may swap.
    const at = (msg: string) => server.logs.find(line => line.msg === msg)?.time as number
    expect(at('Shut down.')).toBeGreaterThanOrEqual(at('Shutting down.'))
    expect(server.logs.every(line => !('notJson' in line))).toBe(true)
  })

  it('on SIGTERM finishes the in-flight request, answers new ones 503, then exits 0', async ({ expect }) => {
    const proxy = await startProxy()
    const server = await start(proxy.url(databaseUrl), { SHUTDOWN_GRACE_MS: '10000', DB_CHECK_TIMEOUT_MS: '1000' })
    expect(await healthStatus(server)).toBe(200)
    proxy.hang() // the database stops answering: /health stays in flight for DB_CHECK_TIMEOUT_MS
    const client = await inFlightHealthCheck(server)

    const signalled = Date.now()
    server.child.kill('SIGTERM')
    await server.waitForLog(line => line.msg === 'Shutting down.')
    // Pipelined behind the in-flight request on the same connection: arrives while the app is closing.
    client.socket.write('GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n')
    await until(() => client.received().includes('"statusCode":503}'), 5000)
    const [first, second] = client.received().split(/(?=HTTP\/1\.1 )/)
    expect(first).toMatch(/^HTTP\/1\.1 503 /)
    expect(first).toContain('{"status":"unavailable","database":"no answer within 1000 ms"}')
    expect(second).toMatch(/^HTTP\/1\.1 503 /)
    expect(second).toContain('"message":"Service Unavailable"')
    client.socket.destroy()

    // The stuck query holds a pooled connection; the pool closes once the database answers again.
    proxy.restore()
    expect(await server.exited).toEqual({ code: 0, signal: null })
    expect(Date.now() - signalled).toBeLessThan(10_000)
    expect(server.logs.map(line => line.msg)).toContain('Shut down.')
  })

  it('exits 1 when shutting down takes longer than SHUTDOWN_GRACE_MS', async ({ expect }) => {
    const proxy = await startProxy()
    const server = await start(proxy.url(databaseUrl), { SHUTDOWN_GRACE_MS: '500', DB_CHECK_TIMEOUT_MS: '20000' })
    expect(await healthStatus(server)).toBe(200)
    proxy.hang()
    await inFlightHealthCheck(server)

    const signalled = Date.now()
    server.child.kill('SIGTERM')
    expect(await server.exited).toEqual({ code: 1, signal: null })
    const elapsed = Date.now() - signalled
    expect(elapsed).toBeGreaterThanOrEqual(450)
    expect(elapsed).toBeLessThan(3000)
    expect(server.logs.find(line => line.msg === 'Shutdown took longer than SHUTDOWN_GRACE_MS; exiting with 1.')).toMatchObject({ delay: 500 })
  })

  it('exits 1 at once on a second signal', async ({ expect }) => {
    const proxy = await startProxy()
    const server = await start(proxy.url(databaseUrl), { SHUTDOWN_GRACE_MS: '30000', DB_CHECK_TIMEOUT_MS: '20000' })
    expect(await healthStatus(server)).toBe(200)
    proxy.hang()
    await inFlightHealthCheck(server)

    server.child.kill('SIGTERM')
    await server.waitForLog(line => line.msg === 'Shutting down.')
    const second = Date.now()
    server.child.kill('SIGTERM')
    expect(await server.exited).toEqual({ code: 1, signal: null })
    expect(Date.now() - second).toBeLessThan(2000)
    expect(server.logs.find(line => line.msg === 'Second signal during shutdown; exiting with 1.')).toMatchObject({ signal: 'SIGTERM' })
  })

  // As root, a checkout in a folder others cannot enter (say, mktemp -d) cannot run the embedded server at all.
  it.skipIf(embeddedPostgresBlockedFolder(path.join(tmpdir(), 'probe')) !== undefined)('without DATABASE_URL, stops the embedded PostgreSQL it started and exits 0 on SIGTERM', async ({ expect, onTestFinished }) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'motion-ingest-shutdown-'))
    onTestFinished(() => rm(dir, { recursive: true, force: true }))
    // As root the embedded server runs as a separate user, who must be able to enter the folder.
    await chmod(dir, 0o777)
    const pgPort = await freePort()
    const server = await startServerProcess({ EMBEDDED_PG_DIR: path.join(dir, 'pg'), EMBEDDED_PG_PORT: String(pgPort), LOG_LEVEL: 'info', SHUTDOWN_GRACE_MS: '10000' }, 60_000)
    expect(await healthStatus(server)).toBe(200)
    expect(await listening(pgPort)).toBe(true)

    // A login whose body is still arriving when the signal comes: it must be answered from the database.
    const body = JSON.stringify({ email: 'nobody@example.test', publicKey: 'no-such-key' })
    const socket = net.connect(server.port, '127.0.0.1')
    let received = ''
    socket.setEncoding('utf8').on('data', chunk => { received += chunk })
    await new Promise(resolve => socket.once('connect', resolve))
    const seen = new Set(server.logs)
    socket.write(`POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`)
    await server.waitForLog(line => !seen.has(line) && line.msg === 'incoming request')

    // embedded-postgres hooks SIGTERM to stop its server and exit 143 at once; the service must still shut down in order.
    server.child.kill('SIGTERM')
    await server.waitForLog(line => line.msg === 'Shutting down.')
    await new Promise(resolve => setTimeout(resolve, 300))
    socket.write(body.slice(10))
    await until(() => received.includes('\r\n\r\n{'), 5000)
    expect(received).toMatch(/^HTTP\/1\.1 401 /)
    socket.destroy()

    expect(await server.exited).toEqual({ code: 0, signal: null })
    expect(server.logs.map(line => line.msg)).toContain('Shut down.')
    expect(await listening(pgPort)).toBe(false)
  })
})
