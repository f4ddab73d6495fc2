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

/**
 * How evenly the phones were served: the spread of each phone's own median
 * ack time and of the readings each had acknowledged. Under overload a fair
 * service slows every phone a little rather than a few a lot.
 */
export interface PhoneSpread {
  /** Each phone's median ack ms, summarised across phones (p50 = the typical phone, max = the worst-served). */
  medianAckMs: LatencySummary
  /** Readings acknowledged per phone: fewest, median, most. */
  readingsAcked: { min: number, p50: number, max: number }
}

export function phoneSpread (phones: Array<{ latenciesMs: ArrayLike<number>, readingsAcked: number }>): PhoneSpread {
  const medians = phones.filter(phone => phone.latenciesMs.length > 0).map(phone => summarizeLatencies(Array.from(phone.latenciesMs)).p50)
  const acked = summarizeLatencies(phones.map(phone => phone.readingsAcked))
  const fewest = phones.length === 0 ? 0 : Math.min(...phones.map(phone => phone.readingsAcked))
  return { medianAckMs: summarizeLatencies(medians), readingsAcked: { min: fewest, p50: acked.p50, max: acked.max } }
}
