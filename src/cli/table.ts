/**
 * A plain aligned table for people: a header, a rule, one line per row;
 * numbers right-aligned, dates as ISO-8601, empty for null. Unlike
 * console.table, no index column and no JavaScript quotes.
 */
export function formatTable (rows: ReadonlyArray<Record<string, unknown>>): string {
  if (rows.length === 0) return ''
  const columns = Object.keys(rows[0] as Record<string, unknown>)
  const cells = rows.map(row => columns.map(column => cellText(row[column])))
  const numeric = columns.map((_, i) => rows.every(row => typeof row[columns[i] as string] === 'number' || row[columns[i] as string] == null))
  const widths = columns.map((column, i) => Math.max(column.length, ...cells.map(line => (line[i] as string).length)))
  const line = (values: string[]) => values
    .map((value, i) => numeric[i] ? value.padStart(widths[i] as number) : value.padEnd(widths[i] as number))
    .join('  ')
    .trimEnd()
  return [line(columns), widths.map(width => '-'.repeat(width)).join('  '), ...cells.map(line)].join('\n')
}

function cellText (value: unknown): string {
  if (value === null || value === undefined) return ''
  if (value instanceof Date) return value.toISOString()
  if (typeof value === 'object') return JSON.stringify(value)
  return String(value)
}
