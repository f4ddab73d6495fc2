import { CliError } from './run.js'

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }

/** Parses a duration such as `45s`, `90m`, `12h`, `30d` or `2w` into seconds. */
export function parseDuration (text: string, name: string): number {
  const match = /^(\d+)\s*([smhdw])$/i.exec(text.trim())
  const seconds = match ? Number(match[1]) * (UNIT_SECONDS[(match[2] as string).toLowerCase()] as number) : NaN
  if (!Number.isSafeInteger(seconds)) {
    throw new CliError(`${name} must be a number followed by s, m, h, d or w (e.g. 30d, 12h), got "${text}".`)
  }
  return seconds
}
