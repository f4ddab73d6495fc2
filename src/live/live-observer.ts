import type { IngestObserver } from '../ingest/types.js'
import type { WrittenBatchNotice } from '../db/live-channel.js'

/**
 * The ingest observer that announces committed batches: it gathers the
 * batches of a group as batchWritten reports them (newest per session) and
 * hands them over once groupCommitted says the transaction committed, so a
 * watcher never hears of a batch that a rollback took back, and a group
 * makes one NOTIFY statement however many batches it holds.
 */
export function liveIngestObserver (publish: (batches: Iterable<WrittenBatchNotice>) => void): IngestObserver {
  // batchWritten and groupCommitted of one group run in one synchronous stretch, so groups never mix here.
  let group = new Map<number, WrittenBatchNotice>()
  return {
    batchWritten: (readings, batch) => {
      const seen = group.get(batch.sessionId)
      group.set(batch.sessionId, {
        sessionId: batch.sessionId,
        batchId: batch.batchId,
        readings: readings + (seen?.readings ?? 0),
        total: batch.totalSensorReadingsWritten
      })
    },
    groupCommitted: () => {
      if (group.size === 0) return
      const batches = group.values()
      group = new Map()
      publish(batches)
    }
  }
}
