import type pg from 'pg'
import { expect } from 'vitest'
import { bearer } from '../helper.js'
import { makeReadings, TestPhone, type Frame } from '../ws-client.js'

export const BATCH = 375
/** Each batch spans 125 distinct timestamps 10 ms apart; batches are 1250 ms apart, so every (ts, sensor) is unique. */
const BATCH_SPAN_MS = 1250

/**
 * A phone's side of a recording that can survive its socket: it remembers
 * which batches the server acknowledged, so after a crash or an outage it
 * resends exactly the others, as a real phone would.
 */
export class Recorder {
  phone: TestPhone | undefined
  sessionId: number | undefined
  /** Batches the server acknowledged (sensor_readings_batch_written), with the total it reported. */
  readonly acked = new Map<number, number>()
  /** Every batch id ever put on a socket, acknowledged or not. */
  readonly everSent = new Set<number>()
  /** storage_unavailable answers received. */
  unavailable = 0
  private readonly baseMs = Date.now() - 6 * 3600_000 + Math.floor(Math.random() * 3600_000)

  constructor (readonly url: string, readonly token: string, readonly totalBatches: number) {}

  readings (batchId: number) {
    return makeReadings(BATCH, this.baseMs + batchId * BATCH_SPAN_MS, batchId + 1)
  }

  get pending (): number[] {
    return Array.from({ length: this.totalBatches }, (_, id) => id).filter(id => !this.acked.has(id))
  }

  /** Connects and creates (or resumes) the session; returns the event the server answered with. */
  async connect (): Promise<'session_created' | 'session_already_exist'> {
    this.phone = await TestPhone.connect(this.url, bearer(this.token))
    this.phone.send('create_session', { metadata: { test: 'reliability' } })
    const frame = await this.phone.next()
    if (frame.event !== 'session_created' && frame.event !== 'session_already_exist') throw new Error(`unexpected ${JSON.stringify(frame)}`)
    const sessionId = frame.data.sessionId as number
    if (this.sessionId !== undefined) expect(sessionId).toBe(this.sessionId)
    this.sessionId = sessionId
    return frame.event
  }

  /**
   * Sends the given batches with up to `window` unanswered at a time and
   * reads the answers. Stops early, without throwing, when the socket closes
   * (a crash) or when stopWhen() says so after an answer.
   */
  async stream (batchIds: number[], window: number, stopWhen: () => boolean = () => false): Promise<void> {
    const phone = this.phone as TestPhone
    let next = 0
    let inflight = 0
    while (next < batchIds.length || inflight > 0) {
      while (next < batchIds.length && inflight < window && phone.closeCode === undefined) {
        const batchId = batchIds[next++] as number
        phone.send('write_sensor_readings_batch', { batch_id: batchId, sensor_readings: this.readings(batchId) })
        this.everSent.add(batchId)
        inflight++
      }
      let frame: Frame
      try {
        frame = await phone.next(15_000)
      } catch (err) {
        if (phone.closeCode !== undefined) return
        throw err
      }
      inflight--
      this.handleAnswer(frame)
      if (stopWhen()) return
    }
  }

  /** Sends destroy_session with the count of every reading of the recording and returns session_destroyed's data. */
  async destroy (): Promise<Record<string, unknown>> {
    const phone = this.phone as TestPhone
    phone.send('destroy_session', { totalSensorReadingsSent: this.totalBatches * BATCH })
    return phone.expect('session_destroyed')
  }

  handleAnswer (frame: Frame): void {
    if (frame.event === 'sensor_readings_batch_written') {
      expect(frame.data.sessionId).toBe(this.sessionId)
      this.acked.set(frame.data.batchId as number, frame.data.totalSensorReadingsWritten as number)
    } else if (frame.event === 'storage_unavailable') {
      expect(frame.data).toMatchObject({ sessionId: this.sessionId, batchId: expect.any(Number), retryable: true })
      this.unavailable++
    } else {
      throw new Error(`unexpected answer to a batch: ${JSON.stringify(frame).slice(0, 300)}`)
    }
  }
}

/**
 * Asserts that the database holds exactly the recording: every batch once in
 * the ledger, every reading once, the running total equal to both, and
 * every batch whole (all 375 of its readings, none half written).
 */
export async function expectExactRecording (db: pg.Pool | pg.Client, recorder: Recorder): Promise<void> {
  const sessionId = recorder.sessionId
  const sent = recorder.totalBatches * BATCH
  const { rows: [session] } = await db.query(
    'select total_sensor_readings_written::int as total, integrity, destroy_reason from sessions where id = $1', [sessionId])
  expect(session).toEqual({ total: sent, integrity: 'ok', destroy_reason: 'client' })
  const { rows: [counts] } = await db.query(
    'select count(*)::int as rows, count(distinct (ts, sensor))::int as distinct_rows from readings where session_id = $1', [sessionId])
  expect(counts).toEqual({ rows: sent, distinct_rows: sent })
  const { rows: ledger } = await db.query(
    'select batch_id, reading_count from session_batches where session_id = $1 order by batch_id', [sessionId])
  expect(ledger).toEqual(Array.from({ length: recorder.totalBatches }, (_, batchId) => ({ batch_id: batchId, reading_count: BATCH })))
  // Every batch whole: its time window holds exactly its 375 readings.
  const windows = Array.from({ length: recorder.totalBatches }, (_, id) => recorder.readings(id)[0]?.timestamp as number)
  const { rows: perBatch } = await db.query(
    `select count(*)::int as n from unnest($2::float8[]) as w(start_ms)
     left join readings r on r.session_id = $1
       and r.ts >= to_timestamp(w.start_ms / 1000) and r.ts < to_timestamp((w.start_ms + 1250) / 1000)
     group by w.start_ms order by w.start_ms`, [sessionId, windows])
  expect(perBatch.map(row => row.n)).toEqual(windows.map(() => BATCH))
}
