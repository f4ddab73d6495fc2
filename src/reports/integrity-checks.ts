import type { SessionAuditFacts, StoredReportCounts } from '../db/integrity-audit.js'
import { lostBatches } from './build-report.js'

/**
 * What an integrity audit compares. Each is a line of its own when it fails:
 * - readings_total: the session's written total, the ledger's sum and the readings rows agree
 * - ledger_batch_ids, ledger_reading_counts, ledger_spans: every ledger row is well formed
 *   (the table's checks say so too, but a restore or a hand edit can bypass them)
 * - report_readings, report_batches: an ended session's stored report counts what is stored
 * - integrity_ok_sent: an ended session judged 'ok' wrote what the phone said it sent
 */
export const INTEGRITY_CHECKS = [
  'readings_total', 'ledger_batch_ids', 'ledger_reading_counts', 'ledger_spans',
  'report_readings', 'report_batches', 'integrity_ok_sent'
] as const
export type IntegrityCheck = typeof INTEGRITY_CHECKS[number]

/** One disagreement found in one session. */
export interface IntegrityMismatch {
  sessionId: number
  check: IntegrityCheck
  /** What differs, for a person. */
  detail: string
  /** The figures compared; null where a figure is missing or unreadable. */
  values: Record<string, number | null>
}

const asCount = (value: unknown): number | null => typeof value === 'number' && Number.isSafeInteger(value) ? value : null
const show = (value: number | null) => value === null ? 'none' : String(value)
const ledgerRows = (n: number) => `${n} ledger ${n === 1 ? 'row' : 'rows'}`

/** The readings of a report's sensors added up; null when any of them is not a count. */
function sensorReadingsSum (report: StoredReportCounts): number | null {
  let sum = 0
  for (const value of report.sensorReadings) {
    const count = asCount(value)
    if (count === null) return null
    sum += count
  }
  return report.sensorReadings.length > 0 ? sum : null
}

/** "a says 3, b has 4" for each pair that differs. */
function differences (pairs: Array<[label: string, reported: number | null, actual: number | null, actualLabel: string]>): string[] {
  return pairs
    .filter(([, reported, actual]) => reported !== actual)
    .map(([label, reported, actual, actualLabel]) => `${label} ${show(reported)}, ${actualLabel} ${show(actual)}`)
}

function reportMismatches (facts: SessionAuditFacts, report: StoredReportCounts): IntegrityMismatch[] {
  const found: IntegrityMismatch[] = []
  const { sessionId, ledger } = facts
  const reportWritten = asCount(report.written)
  const reportRows = sensorReadingsSum(report)
  const readings = differences([
    ['report sensors\' readings', reportRows, facts.rows, 'readings rows'],
    ['report integrity.written', reportWritten, facts.written, 'session written total']
  ])
  if (readings.length > 0) {
    found.push({
      sessionId,
      check: 'report_readings',
      detail: readings.join('; '),
      values: { reportSensorReadings: reportRows, rows: facts.rows, reportWritten, written: facts.written }
    })
  }

  const lost = lostBatches(ledger.highestBatchId, ledger.firstBatchId, ledger.batches)
  const reportBatches = asCount(report.batchesWritten)
  const reportHighest = asCount(report.highestBatchId)
  const reportLost = asCount(report.lostBatches)
  const summaryLost = asCount(report.summaryLostBatches)
  const batches = differences([
    ['report batches.written', reportBatches, ledger.batches, 'ledger rows'],
    ['report batches.highestBatchId', reportHighest, ledger.highestBatchId, 'ledger highest'],
    ['report batches.lost', reportLost, lost, 'ledger lost'],
    ['report summary.lostBatches', summaryLost, lost, 'ledger lost']
  ])
  if (batches.length > 0) {
    found.push({
      sessionId,
      check: 'report_batches',
      detail: batches.join('; '),
      values: {
        reportBatches,
        batches: ledger.batches,
        reportHighestBatchId: reportHighest,
        highestBatchId: ledger.highestBatchId,
        reportLostBatches: reportLost,
        reportSummaryLostBatches: summaryLost,
        lostBatches: lost
      }
    })
  }
  return found
}

/** Every check one session fails, in the order of INTEGRITY_CHECKS. */
export function findMismatches (facts: SessionAuditFacts): IntegrityMismatch[] {
  const found: IntegrityMismatch[] = []
  const { sessionId, ledger } = facts

  if (facts.written !== ledger.readings || ledger.readings !== facts.rows) {
    found.push({
      sessionId,
      check: 'readings_total',
      detail: `session written total ${facts.written}, ledger sum ${ledger.readings}, readings rows ${facts.rows}`,
      values: { written: facts.written, ledger: ledger.readings, rows: facts.rows }
    })
  }
  if (ledger.negativeBatchIds > 0) {
    found.push({
      sessionId,
      check: 'ledger_batch_ids',
      detail: `${ledgerRows(ledger.negativeBatchIds)} with a batch id below 0 (lowest ${show(ledger.lowestNegativeBatchId)})`,
      values: { batches: ledger.negativeBatchIds, lowestBatchId: ledger.lowestNegativeBatchId }
    })
  }
  if (ledger.nonPositiveCounts > 0) {
    found.push({
      sessionId,
      check: 'ledger_reading_counts',
      detail: `${ledgerRows(ledger.nonPositiveCounts)} with reading_count <= 0 (first: batch ${show(ledger.firstNonPositiveBatchId)})`,
      values: { batches: ledger.nonPositiveCounts, firstBatchId: ledger.firstNonPositiveBatchId }
    })
  }
  if (ledger.invertedSpans > 0) {
    found.push({
      sessionId,
      check: 'ledger_spans',
      detail: `${ledgerRows(ledger.invertedSpans)} with first_reading_at after last_reading_at (first: batch ${show(ledger.firstInvertedBatchId)})`,
      values: { batches: ledger.invertedSpans, firstBatchId: ledger.firstInvertedBatchId }
    })
  }
  // Reports are computed when a session ends; one of an active session would be a bug of its own, not a count.
  if (facts.ended && facts.report) found.push(...reportMismatches(facts, facts.report))
  if (facts.ended && facts.integrity === 'ok' && facts.sent !== facts.written) {
    found.push({
      sessionId,
      check: 'integrity_ok_sent',
      detail: `integrity ok, but the phone reported ${facts.sent === null ? 'no count' : facts.sent} sent and ${facts.written} were written`,
      values: { sent: facts.sent, written: facts.written }
    })
  }
  return found
}

/** One line: `session 42 readings_total: …`. */
export function describeMismatch (mismatch: IntegrityMismatch): string {
  return `session ${mismatch.sessionId} ${mismatch.check}: ${mismatch.detail}`
}
