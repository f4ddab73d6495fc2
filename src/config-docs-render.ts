import { CONFIG_DOCS } from './config-docs.js'
import { envSchema, type Env } from './config.js'

type Name = keyof Env

const names = Object.keys(envSchema.shape) as Name[]

/** The value a variable takes when unset, as text; undefined when it stays unset. */
function defaultOf (name: Name): string | undefined {
  const parsed = envSchema.shape[name].safeParse(undefined)
  if (!parsed.success || parsed.data === undefined) return undefined
  return typeof parsed.data === 'function' ? undefined : String(parsed.data)
}

function bySection (): Map<string, Name[]> {
  const sections = new Map<string, Name[]>()
  for (const name of names) {
    const section = CONFIG_DOCS[name].section
    sections.set(section, [...(sections.get(section) ?? []), name])
  }
  return sections
}

const GENERATED = 'Generated from src/config.ts and src/config-docs.ts by `npm run docs:config`; edit those, not this file.'

/** docs/configuration.md: every variable, its default and meaning, by section. */
export function renderConfigurationPage (): string {
  const lines = [
    '# Configuration',
    '',
    `<!-- ${GENERATED} -->`,
    '',
    'Every variable is optional. A bad value stops start-up with one line naming',
    'the variable (`Invalid configuration: PORT="abc": Invalid input: expected number…`).',
    'The service and the CLI read `process.env` only; `.env.example` lists the same',
    'variables with their defaults (load it with `node --env-file=.env`).'
  ]
  for (const [section, members] of bySection()) {
    lines.push('', `## ${section}`, '', '| variable | default | meaning |', '| --- | --- | --- |')
    for (const name of members) {
      const doc = CONFIG_DOCS[name]
      const value = defaultOf(name)
      const shown = doc.defaultText ?? (value === undefined ? '(unset)' : `\`${value}\``)
      lines.push(`| \`${name}\` | ${shown} | ${doc.meaning} |`)
    }
  }
  return `${lines.join('\n')}\n`
}

/** Markdown to the plain text of a comment line. */
const plain = (markdown: string) => markdown.replace(/`/g, '').replace(/\[([^\]]+)\]\([^)]+\)/g, '$1')

/** .env.example: every variable at its default, or commented out with an example when unset. */
export function renderEnvExample (): string {
  const lines = [
    '# motion-ingest configuration. Every variable is optional; the value shown is the default.',
    '# Load it with `node --env-file=.env` or your process manager; the service reads process.env only.',
    `# ${GENERATED}`
  ]
  for (const [section, members] of bySection()) {
    lines.push('', `# --- ${section} ${'-'.repeat(Math.max(3, 72 - section.length))}`)
    for (const name of members) {
      const doc = CONFIG_DOCS[name]
      const value = defaultOf(name)
      lines.push(`# ${plain(doc.meaning)}`)
      lines.push(value === undefined ? `# ${name}=${doc.example ?? ''}` : `${name}=${value}`)
    }
  }
  return `${lines.join('\n')}\n`
}
