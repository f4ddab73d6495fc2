import type { WideBatch } from './grid.js'
import { CHANNEL_COUNT } from './readings-chunk.js'

export interface WindowOptions {
  /** Grid instants per window: round(window seconds x rate). */
  samples: number
  /** Grid instants from one window's start to the next: samples x (1 - overlap), at least 1. */
  step: number
  /**
   * The least share of a window's samples its most common label must hold
   * (unlabelled counting as a label of its own); a window under it is
   * dropped. Above one half, so that the majority is never a tie.
   */
  purity: number
}

/** Windows of the windows layout, one typed array per column. */
export interface WindowBatch {
  length: number
  /** The window's number among the session's kept windows. */
  index: Int32Array
  segment: Int32Array
  /** The first and the last sample's grid instant (microseconds since the epoch). */
  startUs: Float64Array
  endUs: Float64Array
  /** Index into `labels`; -1: the majority of the samples is unlabelled. */
  label: Int32Array
  /** The majority label's share of the samples. */
  purity: Float64Array
  /** Per channel (CHANNELS order): window w's samples at [w x samples, (w + 1) x samples). */
  values: Float64Array[]
  labels: readonly string[]
}

export interface WindowCounts {
  kept: number
  /** Windows whose majority label held less than the purity threshold. */
  impure: number
  /** Kept windows whose majority was unlabelled samples. */
  unlabelled: number
}

/** Parses a window length such as `2.56s`, `2560ms` or `2.56` (seconds). */
export function parseWindowSeconds (text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(s|ms)?\s*$/.exec(text)
  if (!match) return undefined
  const value = Number(match[1]) / (match[2] === 'ms' ? 1000 : 1)
  return value > 0 ? value : undefined
}

/** The sample count and step of windows of `seconds` at `rateHz` overlapping by `overlap` (0 to under 1). */
export function windowShape (seconds: number, rateHz: number, overlap: number): { samples: number, step: number } {
  const samples = Math.max(1, Math.round(seconds * rateHz))
  return { samples, step: Math.max(1, Math.round(samples * (1 - overlap))) }
}

/**
 * Cuts the wide layout's rows into fixed-length windows with overlap, the
 * layout of the UCI HAR data set (2.56 s at 50 Hz: 128 samples, half
 * overlapping): a window lies inside one segment, so it never spans a gap;
 * windows start at the segment's first row and every `step` rows after it,
 * and the rows left at a segment's end that do not fill a window are not
 * used. Each window takes its samples' majority label, or is dropped when
 * that label holds less than `purity` of them.
 */
export class WindowCutter {
  private readonly ts: Float64Array
  private readonly ring: Float64Array[]
  private readonly ringLabel: Int32Array
  private filled = 0
  private segment = -1
  private batch: WindowBatch | undefined
  private done: WindowBatch[] = []
  private readonly tally = new Map<number, number>()
  readonly counts: WindowCounts = { kept: 0, impure: 0, unlabelled: 0 }

  constructor (private readonly options: WindowOptions & { batchWindows: number }) {
    if (!Number.isInteger(options.samples) || options.samples < 1) throw new RangeError(`A window needs a positive whole number of samples, got ${options.samples}`)
    if (!Number.isInteger(options.step) || options.step < 1) throw new RangeError(`The window step must be a positive whole number of samples, got ${options.step}`)
    if (!(options.purity > 0.5 && options.purity <= 1)) throw new RangeError(`The purity threshold must be above 0.5 and at most 1, got ${options.purity}`)
    this.ts = new Float64Array(options.samples)
    this.ring = Array.from({ length: CHANNEL_COUNT }, () => new Float64Array(options.samples))
    this.ringLabel = new Int32Array(options.samples)
  }

  push (rows: WideBatch): WindowBatch[] {
    const { samples, step } = this.options
    for (let i = 0; i < rows.length; i++) {
      const segment = rows.segment[i] as number
      if (segment !== this.segment) {
        this.segment = segment
        this.filled = 0
      }
      const at = this.filled % samples
      this.ts[at] = rows.ts[i] as number
      for (let c = 0; c < CHANNEL_COUNT; c++) (this.ring[c] as Float64Array)[at] = (rows.values[c] as Float64Array)[i] as number
      this.ringLabel[at] = rows.label[i] as number
      this.filled++
      if (this.filled >= samples && (this.filled - samples) % step === 0) this.emit(rows.labels)
    }
    const done = this.done
    this.done = []
    return done
  }

  finish (): WindowBatch[] {
    if (this.batch && this.batch.length > 0) this.done.push(trimWindowBatch(this.batch, this.options.samples))
    this.batch = undefined
    const done = this.done
    this.done = []
    return done
  }

  private emit (labels: readonly string[]): void {
    const { samples } = this.options
    this.tally.clear()
    let majority = -1
    let most = 0
    for (let i = 0; i < samples; i++) {
      const label = this.ringLabel[i] as number
      const count = (this.tally.get(label) ?? 0) + 1
      this.tally.set(label, count)
      if (count > most) {
        most = count
        majority = label
      }
    }
    const purity = most / samples
    if (purity < this.options.purity) {
      this.counts.impure++
      return
    }
    let batch = this.batch
    if (!batch) {
      const size = this.options.batchWindows
      batch = {
        length: 0,
        index: new Int32Array(size),
        segment: new Int32Array(size),
        startUs: new Float64Array(size),
        endUs: new Float64Array(size),
        label: new Int32Array(size),
        purity: new Float64Array(size),
        values: Array.from({ length: CHANNEL_COUNT }, () => new Float64Array(size * samples)),
        labels
      }
      this.batch = batch
    }
    const w = batch.length
    // The ring's oldest sample sits where the next one will be written.
    const oldest = this.filled % samples
    batch.index[w] = this.counts.kept
    batch.segment[w] = this.segment
    batch.startUs[w] = this.ts[oldest] as number
    batch.endUs[w] = this.ts[(oldest + samples - 1) % samples] as number
    batch.label[w] = majority
    batch.purity[w] = purity
    for (let c = 0; c < CHANNEL_COUNT; c++) {
      const ring = this.ring[c] as Float64Array
      const out = batch.values[c] as Float64Array
      const base = w * samples
      out.set(ring.subarray(oldest), base)
      out.set(ring.subarray(0, oldest), base + samples - oldest)
    }
    batch.length++
    this.counts.kept++
    if (majority === -1) this.counts.unlabelled++
    if (batch.length === this.options.batchWindows) {
      this.done.push(batch)
      this.batch = undefined
    }
  }
}

function trimWindowBatch (batch: WindowBatch, samples: number): WindowBatch {
  const n = batch.length
  return {
    ...batch,
    index: batch.index.subarray(0, n),
    segment: batch.segment.subarray(0, n),
    startUs: batch.startUs.subarray(0, n),
    endUs: batch.endUs.subarray(0, n),
    label: batch.label.subarray(0, n),
    purity: batch.purity.subarray(0, n),
    values: batch.values.map(column => column.subarray(0, n * samples))
  }
}
