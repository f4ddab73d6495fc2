import { readFileSync } from 'node:fs'

/** The version in package.json; the same file sits one level above src/ and dist/. */
export const SERVICE_VERSION: string = JSON.parse(
  readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version
