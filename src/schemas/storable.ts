/**
 * What PostgreSQL (text, jsonb) and the JavaScript objects in between cannot
 * keep exactly as a client sent it. Input that would be stored changed is
 * refused, with where it is, instead of failing later or being stored altered.
 */

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/**
 * Why a string cannot be stored as sent, if it cannot. PostgreSQL refuses NUL
 * in text and jsonb; an unpaired UTF-16 surrogate has no UTF-8 form, so it
 * reaches the database as U+FFFD and different strings would become one.
 */
export function textProblem (text: string): string | undefined {
  if (text.includes('\u0000')) return 'must not contain NUL (\\u0000) characters'
  if (LONE_SURROGATE.test(text)) return 'must not contain unpaired UTF-16 surrogates'
  return undefined
}

export interface StorageProblem {
  path: Array<string | number>
  message: string
}

/** A value met in the walk; the path is rebuilt from parents only for a problem. */
interface Visit {
  value: unknown
  key: string | number
  parent: Visit | undefined
  depth: number
  /** Set when the key itself cannot be stored; the value is then not looked at. */
  keyProblem?: string
}

function pathOf (visit: Visit): Array<string | number> {
  const path: Array<string | number> = []
  for (let at: Visit | undefined = visit; at?.parent; at = at.parent) path.push(at.key)
  return path.reverse()
}

function keyProblemOf (key: string): string | undefined {
  if (key === '__proto__') return 'is a key that cannot be stored (JavaScript objects drop "__proto__"); use another name'
  const problem = textProblem(key)
  return problem && `key ${problem}`
}

/** Enough to point a client at its mistakes without answering a hostile payload at length. */
const MAX_PROBLEMS = 20

/**
 * Where and why a parsed JSON value cannot be stored as jsonb exactly as sent:
 * - NUL and unpaired surrogates in strings and keys (see textProblem);
 * - numbers that are not finite: 1e999 parses to Infinity, which JSON.stringify writes as null;
 * - an own "__proto__" key, which JSON.parse keeps but any object built from it
 *   (zod, spread into a literal, Object.assign) drops or turns into a prototype;
 * - nesting deeper than maxDepth, because JSON.stringify and the jsonb parser
 *   recurse and would overflow a stack.
 * Paths are relative to the value. Iterative, so the walk itself cannot overflow.
 */
export function unstorableJson (root: unknown, maxDepth: number): StorageProblem[] {
  const problems: StorageProblem[] = []
  const report = (visit: Visit, message: string) => problems.push({ path: pathOf(visit), message })
  const stack: Visit[] = [{ value: root, key: '', parent: undefined, depth: 1 }]
  while (stack.length > 0 && problems.length < MAX_PROBLEMS) {
    const visit = stack.pop() as Visit
    const { value, depth, keyProblem } = visit
    if (keyProblem) {
      report(visit, keyProblem)
      continue
    }
    if (typeof value === 'string') {
      const problem = textProblem(value)
      if (problem) report(visit, problem)
      continue
    }
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) report(visit, 'must be a finite number (JSON numbers beyond ±1.8e308 cannot be stored)')
      continue
    }
    if (value === null || typeof value !== 'object') continue
    if (depth > maxDepth) {
      report(visit, `must not nest deeper than ${maxDepth} levels`)
      continue
    }
    const isArray = Array.isArray(value)
    const entries = Object.entries(value)
    // Pushed last to first, so problems come out in document order.
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, child] = entries[i] as [string, unknown]
      stack.push(isArray
        ? { value: child, key: Number(key), parent: visit, depth: depth + 1 }
        : { value: child, key, parent: visit, depth: depth + 1, keyProblem: keyProblemOf(key) })
    }
  }
  return problems
}
