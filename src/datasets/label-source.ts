import { labelSegments, openLabelEnd } from '../labels/label-rules.js'
import type { SessionLabels } from '../labels/session-labels.js'
import type { LabelSpan } from './label-cursor.js'

/** An interval label as stored; endUs null for an open one. */
export interface IntervalLabel {
  startUs: number
  endUs: number | null
  label: string
  note: string | null
}

/** A stretch with one label and where it comes from: an interval label, the default label, or none. */
export interface SourcedLabelSpan extends LabelSpan {
  source: 'interval' | 'default' | null
  /** The interval label's note. */
  note: string | null
}

/** Everything a dataset needs to know of a session's labels. */
export interface SessionLabelling {
  /** Consecutive spans over the session's readings (first to just after the last), label null where none applies. */
  spans: SourcedLabelSpan[]
  /** metadata.activity when it names a vocabulary label. */
  defaultLabel: string | null
  /** metadata.activity when it names none: the session is unlabelled where no interval label applies. */
  unmatchedActivity: string | null
  intervals: IntervalLabel[]
}

/** Where a dataset export looks labels up. */
export interface DatasetLabelSource {
  /** Undefined when the session does not exist. */
  labelsOf: (sessionId: number) => Promise<SessionLabelling | undefined>
}

/**
 * The labels of ended sessions as SessionLabels keeps them: interval labels
 * win where they apply, the default label (metadata.activity matched against
 * the vocabulary) fills the rest; an open label runs to just after the last
 * reading.
 */
export function sessionLabelSource (labels: SessionLabels): DatasetLabelSource {
  return {
    async labelsOf (sessionId) {
      const view = await labels.list(sessionId)
      if (!view) return undefined
      const { readings } = view
      const extent = { active: view.active, lastReadingUs: readings?.lastUs ?? null }
      const spans = readings
        ? labelSegments(view.labels, view.defaultLabel, readings.firstUs, readings.lastUs + 1, startUs => openLabelEnd(extent, startUs))
        : []
      return {
        spans: spans.map(({ startUs, endUs, label, labelId }) => ({
          startUs,
          endUs,
          label,
          source: labelId !== null ? 'interval' : label !== null ? 'default' : null,
          note: labelId === null ? null : view.labels.find(stored => stored.id === labelId)?.note ?? null
        })),
        defaultLabel: view.defaultLabel,
        unmatchedActivity: view.unmatchedActivity,
        intervals: view.labels.map(({ startUs, endUs, label, note }) => ({ startUs, endUs, label, note }))
      }
    }
  }
}
