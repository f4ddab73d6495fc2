import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../', import.meta.url))
const documents = ['README.md', 'examples/README.md', ...(await readdir(path.join(root, 'docs'))).filter(name => name.endsWith('.md')).map(name => `docs/${name}`)]

/** Relative links of a markdown text, outside code blocks: [text](target), without the #anchor. */
function relativeLinks (markdown: string): string[] {
  const prose = markdown.replace(/```[\s\S]*?```/g, '')
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)]
    .map(match => match[1] as string)
    .filter(target => !/^[a-z]+:/i.test(target) && !target.startsWith('#'))
    .map(target => target.split('#')[0] as string)
}

describe('the documentation', () => {
  it.each(documents)('%s links only to files that exist', async document => {
    const text = await readFile(path.join(root, document), 'utf8')
    const broken = relativeLinks(text).filter(target => !existsSync(path.join(root, path.dirname(document), target)))
    expect(broken).toEqual([])
  })

  it('never links outside the repository', async () => {
    for (const document of documents) {
      const text = await readFile(path.join(root, document), 'utf8')
      for (const target of relativeLinks(text)) {
        expect(path.relative(root, path.join(root, path.dirname(document), target)), `${document} → ${target}`).not.toMatch(/^\.\./)
      }
    }
  })

  it('keeps the README to a first read (under 150 lines)', async () => {
    expect((await readFile(path.join(root, 'README.md'), 'utf8')).split('\n').length).toBeLessThan(150)
  })
})
