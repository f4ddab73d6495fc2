#!/usr/bin/env node
// In a checkout, run the TypeScript sources through tsx so the CLI never lags
// behind them; in the production image (no src/), run the compiled build.
import { existsSync } from 'node:fs'

const source = new URL('../src/cli/main.ts', import.meta.url)
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api')
  register()
  await import(source.href)
} else {
  await import(new URL('../dist/cli/main.js', import.meta.url).href)
}
