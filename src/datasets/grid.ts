import type { LabelCursor } from './label-cursor.js'
import { CHANNEL_COUNT, SENSOR_COUNT, type ReadingsChunk } from './readings-chunk.js'

/** Rows of the wide layout, one per grid instant, one typed array per column. */
export interface WideBatch {
  length: number
  /** Grid instants, microseconds since the epoch. */
  ts: Float64Array
  /** The nine channels (CHANNELS order); NaN throughout for a sensor the session does not have. */
  values: Float64Array[]
  /** Index into `labels`, -1 where no label applies. */
  label: Int32Array
  segment: Int32Array
  /** The session's label dictionary. */
  labels: readonly string[]
}

/** A stretch of consecutive grid instants with a row each, between two gaps. */
export interface GridSegment {
  index: number
  startUs: number
  endUs: number
  rows: number
}

export interface GridOptions {
  rateHz: number
  /** Per sensor code: the session has this sensor. Its readings bound the rows; a sensor it lacks leaves its columns null. */
  sensors: readonly boolean[]
  /**
   * Per sensor code: the longest step between two readings that is not a
   * gap, in microseconds (the completeness report's rule: GAP_FACTOR x the
   * median interval). Infinity: no gap is known for the sensor.
   */
  gapThresholdUs: readonly number[]
  labels: LabelCursor
  /** Rows per batch handed on. */
  batchRows: number
}

/** At most this many segments are kept for the manifest; more are counted. */
export const MAX_LISTED_SEGMENTS = 1000

/**
 * One sensor's readings that a grid instant still to come may need, in time
 * order, with duplicates of a timestamp already collapsed; and whether the
 * step from the previous reading to each one is a gap.
 */
class SampleQueue {
  private t = new Float64Array(64)
  private v = [new Float64Array(64), new Float64Array(64), new Float64Array(64)]
  private gap = new Uint8Array(64)
  private head = 0
  size = 0
  last = Number.NEGATIVE_INFINITY

  push (t: number, x: number, y: number, z: number, gapBefore: boolean): void {
    if (this.size === this.t.length) this.grow()
    const at = (this.head + this.size) % this.t.length
    this.t[at] = t
    ;(this.v[0] as Float64Array)[at] = x
    ;(this.v[1] as Float64Array)[at] = y
    ;(this.v[2] as Float64Array)[at] = z
    this.gap[at] = gapBefore ? 1 : 0
    this.size++
    this.last = t
  }

  /** Time of the i-th queued reading (0: the oldest). */
  timeAt (i: number): number {
    return this.t[(this.head + i) % this.t.length] as number
  }

  valueAt (i: number, axis: number): number {
    return (this.v[axis] as Float64Array)[(this.head + i) % this.t.length] as number
  }

  gapBefore (i: number): boolean {
    return this.gap[(this.head + i) % this.t.length] === 1
  }

  /** Drops the readings before the last one at or before `us`: what interpolating at `us` or later needs stays. */
  dropBefore (us: number): void {
    while (this.size > 1 && this.timeAt(1) <= us) {
      this.head = (this.head + 1) % this.t.length
      this.size--
    }
  }

  private grow (): void {
    const capacity = this.t.length * 2
    const t = new Float64Array(capacity)
    const v = [new Float64Array(capacity), new Float64Array(capacity), new Float64Array(capacity)]
    const gap = new Uint8Array(capacity)
    for (let i = 0; i < this.size; i++) {
      const from = (this.head + i) % this.t.length
      t[i] = this.t[from] as number
      for (let axis = 0; axis < 3; axis++) (v[axis] as Float64Array)[i] = (this.v[axis] as Float64Array)[from] as number
      gap[i] = this.gap[from] as number
    }
    this.t = t
    this.v = v
    this.gap = gap
    this.head = 0
  }
}

/** Lexicographic (x, y, z) order: which of two readings sharing a timestamp is kept, whatever order they arrive in. */
const before = (x: number, y: number, z: number, held: Float64Array) =>
  x < (held[1] as number) || (x === held[1] && (y < (held[2] as number) || (y === held[2] && z < (held[3] as number))))

/**
 * Puts a session's readings, streamed in time order, on a fixed time grid in
 * one pass: each sensor's three axes linearly interpolated at every grid
 * instant between two of its readings, never across a gap and never beyond
 * its first or last reading. An instant gets a row only where every sensor
 * the session has can be interpolated; a run of rows between two gaps is a
 * segment.
 *
 * The grid is origin + round(k x 1e6 / rate) microseconds, origin the whole
 * second at or before the session's first reading, one grid for every
 * segment. Readings of one sensor that share a timestamp count as one, the
 * least in (x, y, z) order, so the rows do not depend on the order ties
 * arrive in. Memory holds only the readings a row still to come needs: a
 * sensor in a gap is known to be once the others have gone past its last
 * reading by the gap threshold.
 */
export class GridInterpolator {
  private readonly queues: SampleQueue[] = []
  /** Per sensor: the latest reading, not yet queued while another of its timestamp may follow: [t, x, y, z]. */
  private readonly held: Float64Array[] = []
  private readonly holding: boolean[] = []
  private readonly participating: number[] = []
  private readonly periodUs: number
  /** The latest timestamp read. */
  private latest = Number.NEGATIVE_INFINITY
  private origin: number | undefined
  /** The next grid index to decide. */
  private k = 0
  private lastRowK = Number.NEGATIVE_INFINITY
  private segmentIndex = -1
  private batch: WideBatch | undefined
  private done: WideBatch[] = []
  private rowCount = 0
  private segmentCount = 0
  private readonly listed: GridSegment[] = []

  constructor (private readonly options: GridOptions) {
    if (!(options.rateHz > 0) || !Number.isFinite(options.rateHz)) throw new RangeError(`The grid rate must be a positive number of Hz, got ${options.rateHz}`)
    this.periodUs = 1e6 / options.rateHz
    for (let s = 0; s < SENSOR_COUNT; s++) {
      this.queues.push(new SampleQueue())
      this.held.push(new Float64Array(4))
      this.holding.push(false)
      if (options.sensors[s]) this.participating.push(s)
    }
  }

  /** Rows written so far. */
  get rows (): number {
    return this.rowCount
  }

  /** Segments so far, and the first MAX_LISTED_SEGMENTS of them. */
  get segments (): { count: number, listed: readonly GridSegment[] } {
    return { count: this.segmentCount, listed: this.listed }
  }

  /** Takes readings in time order; returns the batches of rows completed by them. */
  push (chunk: ReadingsChunk): WideBatch[] {
    const { ts, sensor, x, y, z } = chunk
    for (let i = 0; i < chunk.length; i++) {
      const t = ts[i] as number
      if (t > this.latest) {
        if (this.origin === undefined) this.origin = Math.floor(t / 1e6) * 1e6
        // No later reading shares the held timestamps: they are final.
        for (const s of this.participating) if (this.holding[s]) this.commit(s)
        this.latest = t
        this.advance(false)
      }
      const s = sensor[i] as number
      if (!this.options.sensors[s]) continue
      const held = this.held[s] as Float64Array
      const xi = x[i] as number
      const yi = y[i] as number
      const zi = z[i] as number
      if (this.holding[s] && !before(xi, yi, zi, held)) continue
      held[0] = t
      held[1] = xi
      held[2] = yi
      held[3] = zi
      this.holding[s] = true
    }
    return this.takeDone()
  }

  /** After the last reading: decides every instant left and returns the last batches. */
  finish (): WideBatch[] {
    for (const s of this.participating) if (this.holding[s]) this.commit(s)
    this.advance(true)
    if (this.batch && this.batch.length > 0) this.done.push(trimWideBatch(this.batch))
    this.batch = undefined
    return this.takeDone()
  }

  private takeDone (): WideBatch[] {
    const done = this.done
    this.done = []
    return done
  }

  private commit (s: number): void {
    const held = this.held[s] as Float64Array
    const queue = this.queues[s] as SampleQueue
    const t = held[0] as number
    queue.push(t, held[1] as number, held[2] as number, held[3] as number, t - queue.last > (this.options.gapThresholdUs[s] ?? Infinity))
    this.holding[s] = false
  }

  private timeOf (k: number): number {
    return (this.origin as number) + Math.round(k * this.periodUs)
  }

  /** The first grid index whose instant is at or after `us`. */
  private indexAtOrAfter (us: number): number {
    let k = Math.max(0, Math.ceil((us - (this.origin as number)) / this.periodUs))
    while (k > 0 && this.timeOf(k - 1) >= us) k--
    while (this.timeOf(k) < us) k++
    return k
  }

  /**
   * Decides grid instants in order while every sensor's readings around
   * them are known. An instant after a sensor's last queued reading is
   * decided only once the stream is past that reading by more than the gap
   * threshold (the sensor is then in a gap there: any later reading of it
   * comes at or after `latest`), or at the end.
   */
  private advance (final: boolean): void {
    if (this.origin === undefined || this.participating.length === 0) return
    let end = Number.POSITIVE_INFINITY
    for (const s of this.participating) end = Math.min(end, (this.queues[s] as SampleQueue).last)
    for (;;) {
      const g = this.timeOf(this.k)
      if (final) {
        // Past the earliest last reading, some sensor has nothing to interpolate from.
        if (g > end) return
      } else {
        let skipTo = Number.NEGATIVE_INFINITY
        for (const s of this.participating) {
          const queue = this.queues[s] as SampleQueue
          if (g <= queue.last) continue
          const threshold = this.options.gapThresholdUs[s] ?? Infinity
          // Any later reading of the sensor comes at or after `latest`: before it, the sensor has
          // not started yet, or is in a gap.
          if (g < this.latest && (queue.size === 0 || this.latest - queue.last > threshold)) {
            skipTo = Math.max(skipTo, this.latest)
            continue
          }
          return
        }
        if (skipTo > g) {
          // Every instant before `latest` lies in this sensor's gap (or before its first reading): no rows.
          this.k = Math.max(this.k + 1, this.indexAtOrAfter(skipTo))
          const next = this.timeOf(this.k)
          // The other sensors' readings before the next instant are no longer needed.
          for (const s of this.participating) (this.queues[s] as SampleQueue).dropBefore(next)
          if (next >= this.latest) return
          continue
        }
      }
      this.decide(this.k, g)
      this.k++
    }
  }

  /** Interpolates every sensor at grid instant g and writes the row when all of them have a value there. */
  private decide (k: number, g: number): void {
    const row = this.rowValues
    for (const s of this.participating) {
      const queue = this.queues[s] as SampleQueue
      queue.dropBefore(g)
      if (queue.size === 0 || queue.timeAt(0) > g) return
      const t0 = queue.timeAt(0)
      if (t0 === g) {
        for (let axis = 0; axis < 3; axis++) row[s * 3 + axis] = queue.valueAt(0, axis)
        continue
      }
      if (queue.size < 2 || queue.gapBefore(1)) return
      const fraction = (g - t0) / (queue.timeAt(1) - t0)
      for (let axis = 0; axis < 3; axis++) {
        const a = queue.valueAt(0, axis)
        row[s * 3 + axis] = a + (queue.valueAt(1, axis) - a) * fraction
      }
    }
    this.writeRow(k, g)
  }

  private readonly rowValues = new Float64Array(CHANNEL_COUNT).fill(Number.NaN)

  private writeRow (k: number, g: number): void {
    if (k !== this.lastRowK + 1) {
      this.segmentIndex++
      this.segmentCount++
      if (this.listed.length < MAX_LISTED_SEGMENTS) this.listed.push({ index: this.segmentIndex, startUs: g, endUs: g, rows: 0 })
    }
    this.lastRowK = k
    const listed = this.listed[this.listed.length - 1]
    if (listed && listed.index === this.segmentIndex) {
      listed.endUs = g
      listed.rows++
    }
    let batch = this.batch
    if (!batch) {
      const size = this.options.batchRows
      batch = {
        length: 0,
        ts: new Float64Array(size),
        values: Array.from({ length: CHANNEL_COUNT }, () => new Float64Array(size)),
        label: new Int32Array(size),
        segment: new Int32Array(size),
        labels: this.options.labels.dictionary
      }
      this.batch = batch
    }
    const at = batch.length
    batch.ts[at] = g
    for (let c = 0; c < CHANNEL_COUNT; c++) (batch.values[c] as Float64Array)[at] = this.rowValues[c] as number
    batch.label[at] = this.options.labels.indexAt(g)
    batch.segment[at] = this.segmentIndex
    batch.length++
    this.rowCount++
    if (batch.length === this.options.batchRows) {
      this.done.push(batch)
      this.batch = undefined
    }
  }
}

/** Slices a batch's columns to its length (the last batch of a session is usually short). */
export function trimWideBatch (batch: WideBatch): WideBatch {
  if (batch.length === batch.ts.length) return batch
  const n = batch.length
  return {
    ...batch,
    ts: batch.ts.subarray(0, n),
    values: batch.values.map(column => column.subarray(0, n)),
    label: batch.label.subarray(0, n),
    segment: batch.segment.subarray(0, n)
  }
}
