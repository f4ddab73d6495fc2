export interface LatencySummary {
  count: number
  p50: number
  p95: number
  p99: number
  max: number
  mean: number
}

/** Nearest-rank percentiles of a sample (sorted in place). */
export function summarizeLatencies (samples: Float64Array | number[]): LatencySummary {
  const sorted = Float64Array.from(samples).sort()
  const count = sorted.length
  if (count === 0) return { count: 0, p50: 0, p95: 0, p99: 0, max: 0, mean: 0 }
  const at = (q: number) => sorted[Math.min(count - 1, Math.max(0, Math.ceil(q * count) - 1))]!
  let sum = 0
  for (const value of sorted) sum += value
  return { count, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: sorted[count - 1]!, mean: sum / count }
}
