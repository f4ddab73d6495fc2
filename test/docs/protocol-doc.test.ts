import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { protocolNames } from '../../src/openapi/ws-protocol.js'

const protocol = await readFile(new URL('../../docs/protocol.md', import.meta.url), 'utf8')
const names = protocolNames()

describe('docs/protocol.md', () => {
  it('has a section for every client event the server accepts', () => {
    const missing = names.clientEvents.filter(event => !protocol.includes(`### \`${event}\``))
    expect(missing).toEqual([])
  })

  it('has a section for every event the server can send', () => {
    const missing = names.serverEvents.filter(event => !protocol.includes(`### \`${event}\``))
    expect(missing).toEqual([])
  })

  it('lists every code of the error event', () => {
    const missing = names.errorCodes.filter(code => !protocol.includes(`| \`${code}\` |`))
    expect(missing).toEqual([])
  })

  it('documents no event the server does not have', () => {
    const known = new Set([...names.clientEvents, ...names.serverEvents])
    const documented = [...protocol.matchAll(/^### `([a-z_]+)`$/gm)].map(match => match[1])
    expect(documented.filter(event => !known.has(event as string))).toEqual([])
  })
})
