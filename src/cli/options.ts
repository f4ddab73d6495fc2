import { CliError } from './run.js'

/** An integer option of at least `min`, or a CliError naming the option. */
export function positiveInt (value: string, name: string, min = 1): number {
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < min) throw new CliError(`${name} must be an integer >= ${min}, got "${value}".`)
  return n
}
