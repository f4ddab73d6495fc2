import { spawn, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

export async function freePort (): Promise<number> {
  const server = net.createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise(resolve => server.close(resolve))
  return port
}

/** The service as a real process (`node --import tsx src/server.ts`), as it runs in production. */
export class ServerProcess {
  private child: ChildProcess | undefined
  private exited: Promise<number | null> = Promise.resolve(null)
  /** stdout and stderr, for the failure message when it does not start. */
  output = ''

  constructor (readonly port: number, private readonly env: Record<string, string>) {}

  get url (): string {
    return `http://127.0.0.1:${this.port}`
  }

  get wsUrl (): string {
    return `ws://127.0.0.1:${this.port}/ws`
  }

  /** Starts the process and resolves once GET /health answers 200. */
  async start (timeoutMs = 20_000): Promise<void> {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: ROOT,
      env: { ...process.env, HOST: '127.0.0.1', PORT: String(this.port), LOG_LEVEL: 'warn', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    this.child = child
    child.stdout?.on('data', chunk => { this.output += chunk })
    child.stderr?.on('data', chunk => { this.output += chunk })
    this.exited = new Promise(resolve => child.once('exit', code => resolve(code)))
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (child.exitCode !== null) break
      try {
        if ((await fetch(`${this.url}/health`)).status === 200) return
      } catch {
        // not listening yet
      }
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    await this.kill()
    throw new Error(`the server did not become healthy:\n${this.output.slice(-2000)}`)
  }

  /** Ends the process with a signal and waits until it is gone. */
  async kill (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    child.kill(signal)
    await this.exited
  }
}
