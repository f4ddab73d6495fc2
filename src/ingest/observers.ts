import type { IngestObserver } from './types.js'

/** One observer that calls each given observer's hooks in turn (metrics, then the live view, …). */
export function combineIngestObservers (...observers: Array<IngestObserver | undefined>): IngestObserver {
  const present = observers.filter((observer): observer is IngestObserver => observer !== undefined)
  return {
    groupCommitted: info => { for (const observer of present) observer.groupCommitted?.(info) },
    groupFailed: info => { for (const observer of present) observer.groupFailed?.(info) },
    batchWritten: (readings, batch) => { for (const observer of present) observer.batchWritten?.(readings, batch) },
    batchReplayed: () => { for (const observer of present) observer.batchReplayed?.() },
    batchConflicted: () => { for (const observer of present) observer.batchConflicted?.() }
  }
}
