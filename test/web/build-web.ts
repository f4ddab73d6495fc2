import { execFileSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import path from 'node:path'
import { WEB_ROOT } from '../../src/plugins/web.js'

const WEB = path.resolve(WEB_ROOT, '..')

function newestChange (folder: string): number {
  let newest = 0
  for (const entry of readdirSync(folder, { withFileTypes: true })) {
    const full = path.join(folder, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestChange(full) : statSync(full).mtimeMs)
  }
  return newest
}

/**
 * Builds the web page (vite build web) unless web/dist is newer than its
 * sources: CI runs `npm test` on a fresh clone, where nothing is built yet.
 */
export function ensureWebBuilt (): void {
  const built = (() => {
    try {
      return statSync(path.join(WEB_ROOT, 'index.html')).mtimeMs
    } catch {
      return 0
    }
  })()
  const sources = Math.max(newestChange(path.join(WEB, 'src')), statSync(path.join(WEB, 'index.html')).mtimeMs,
    statSync(path.join(WEB, 'vite.config.ts')).mtimeMs)
  if (built > sources) return
  execFileSync(process.execPath, [path.join(WEB, '..', 'node_modules', 'vite', 'bin', 'vite.js'), 'build', WEB, '--logLevel', 'warn'], { stdio: 'inherit' })
}
