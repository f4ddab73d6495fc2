import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { renderConfigurationPage, renderEnvExample } from '../../src/config-docs-render.js'
import { loadConfig } from '../../src/config.js'

const read = (path: string) => readFile(new URL(`../../${path}`, import.meta.url), 'utf8')

describe('configuration documents', () => {
  it('docs/configuration.md is what npm run docs:config writes from the schema', async () => {
    expect(await read('docs/configuration.md'), 'run npm run docs:config').toBe(renderConfigurationPage())
  })

  it('.env.example is what npm run docs:config writes from the schema', async () => {
    expect(await read('.env.example'), 'run npm run docs:config').toBe(renderEnvExample())
  })

  it('.env.example, loaded as it is, gives the defaults', async () => {
    const env: Record<string, string> = {}
    for (const line of (await read('.env.example')).split('\n')) {
      const match = /^([A-Z0-9_]+)=(.*)$/.exec(line)
      if (match) env[match[1] as string] = match[2] as string
    }
    expect(Object.keys(env).length).toBeGreaterThan(40)
    expect(JSON.stringify(loadConfig(env))).toBe(JSON.stringify(loadConfig({})))
  })
})
