/**
 * Writes docs/configuration.md and .env.example from the configuration schema
 * (src/config.ts) and its documentation (src/config-docs.ts).
 * `npm run docs:config`; test/docs/config-docs.test.ts fails when they are stale.
 */
import { writeFile } from 'node:fs/promises'
import { renderConfigurationPage, renderEnvExample } from '../src/config-docs-render.js'

const root = new URL('../', import.meta.url)
await writeFile(new URL('docs/configuration.md', root), renderConfigurationPage())
await writeFile(new URL('.env.example', root), renderEnvExample())
console.log('Wrote docs/configuration.md and .env.example.')
