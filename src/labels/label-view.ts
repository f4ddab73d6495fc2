import type { StoredLabel, VocabularyEntry } from '../db/labels-repository.js'
import { formatMicros } from '../schemas/timestamps.js'
import type { LabelView } from '../schemas/labels.js'

/** A stored label as the routes and the CLI show it: times in ISO-8601 UTC with microseconds. */
export const toLabelView = (label: StoredLabel): LabelView => ({
  id: label.id,
  sessionId: label.sessionId,
  startTime: formatMicros(label.startUs),
  endTime: label.endUs === null ? null : formatMicros(label.endUs),
  label: label.label,
  note: label.note,
  createdBy: label.createdBy,
  createdAt: label.createdAt.toISOString()
})

export const toVocabularyView = (entry: VocabularyEntry) => ({ name: entry.name, description: entry.description, createdAt: entry.createdAt.toISOString() })
