import {
  addVocabularyName, closeLabel, deleteSessionLabel, findSessionLabel, findTouchingLabels, insertLabel, isVocabularyName,
  listSessionLabels, listVocabulary, lockLabelSession, readLabelSessionFacts, removeVocabularyName, updateLabel,
  type AddVocabularyResult, type LabelSessionFacts, type StoredLabel, type VocabularyEntry
} from '../db/labels-repository.js'
import { withTransaction, type Pool, type PoolClient } from '../db/pool.js'
import { MAX_LABELS_PER_SESSION, MAX_VOCABULARY_SIZE } from '../schemas/labels.js'
import {
  defaultLabelOf, judgeLabelChange, judgeNewLabel, labelRange, labelSegments, openLabelEnd,
  type LabelRange, type LabelRefusal, type LabelSegment, type SessionExtent
} from './label-rules.js'

/** A label as a client gives it, times in microseconds since the epoch; endUs null makes an open label. */
export interface LabelInput {
  startUs: number
  endUs: number | null
  label: string
  note: string | null
}

export type AddLabelResult =
  /** Stored; closedLabelId: the open label it ended at its start. */
  | { status: 'recorded', label: StoredLabel, closedLabelId: number | null }
  /** The same label was stored already (a resend): nothing changed. */
  | { status: 'duplicate', label: StoredLabel }
  | LabelRefusal
  | { status: 'session_not_found' }

export type ChangeLabelResult =
  | { status: 'updated', label: StoredLabel }
  | LabelRefusal
  | { status: 'not_found' }

/** A change to a stored label: absent fields stay; note null removes the note. */
export interface LabelChange {
  startUs?: number | undefined
  endUs?: number | undefined
  label?: string | undefined
  note?: string | null | undefined
}

export interface SessionLabelsView {
  sessionId: number
  active: boolean
  readings: { firstUs: number, lastUs: number } | null
  labelRange: LabelRange | null
  defaultLabel: string | null
  unmatchedActivity: string | null
  labels: StoredLabel[]
}

/** What the WebSocket transport needs: adding a label is all a phone does. */
export interface LabelRecorder {
  add: (sessionId: number, actorId: number | null, input: LabelInput) => Promise<AddLabelResult>
}

export interface SessionLabelsOptions {
  maxLabelsPerSession?: number
  maxVocabularySize?: number
}

const extentOf = (facts: LabelSessionFacts): SessionExtent => ({
  active: facts.active,
  createdAtUs: facts.createdAtUs,
  nowUs: facts.nowUs,
  firstReadingUs: facts.firstReadingUs,
  lastReadingUs: facts.lastReadingUs
})

/**
 * Interval labels for every transport (HTTP routes, the WebSocket `label`
 * event, the CLI): each write runs in one transaction under the session's
 * row lock, reads what the rules (label-rules.ts) need, and does what they
 * decide. Who may label which session is the caller's to check.
 */
export class SessionLabels implements LabelRecorder {
  private readonly maxLabels: number
  private readonly maxVocabulary: number

  constructor (private readonly pool: Pool, options: SessionLabelsOptions = {}) {
    this.maxLabels = options.maxLabelsPerSession ?? MAX_LABELS_PER_SESSION
    this.maxVocabulary = options.maxVocabularySize ?? MAX_VOCABULARY_SIZE
  }

  /** The session's labels (those sharing an instant with [fromUs, toUs) when given), its default label and where labels may lie. */
  async list (sessionId: number, range: { fromUs?: number | undefined, toUs?: number | undefined } = {}): Promise<SessionLabelsView | undefined> {
    const [facts, labels, vocabulary] = await Promise.all([
      readLabelSessionFacts(this.pool, sessionId),
      listSessionLabels(this.pool, sessionId, range),
      this.vocabularyNames()
    ])
    if (!facts) return undefined
    const extent = extentOf(facts)
    return {
      sessionId,
      active: facts.active,
      readings: facts.firstReadingUs !== null && facts.lastReadingUs !== null ? { firstUs: facts.firstReadingUs, lastUs: facts.lastReadingUs } : null,
      labelRange: labelRange(extent),
      ...defaultLabelOf(facts.metadata, new Set(vocabulary)),
      labels
    }
  }

  /**
   * The label of every instant of [fromUs, toUs) (default: the session's
   * readings), as consecutive segments: what an export cuts windows with.
   * Undefined when the session does not exist.
   */
  async segments (sessionId: number, range: { fromUs?: number, toUs?: number } = {}): Promise<LabelSegment[] | undefined> {
    const view = await this.list(sessionId, range)
    if (!view) return undefined
    const fromUs = range.fromUs ?? view.readings?.firstUs
    const toUs = range.toUs ?? (view.readings ? view.readings.lastUs + 1 : undefined)
    if (fromUs === undefined || toUs === undefined || toUs <= fromUs) return []
    const extent = { active: view.active, lastReadingUs: view.readings?.lastUs ?? null }
    return labelSegments(view.labels, view.defaultLabel, fromUs, toUs, startUs => openLabelEnd(extent, startUs))
  }

  async add (sessionId: number, actorId: number | null, input: LabelInput): Promise<AddLabelResult> {
    return withTransaction(this.pool, async client => {
      const facts = await lockLabelSession(client, sessionId)
      if (!facts) return { status: 'session_not_found' }
      const [touching, known] = await Promise.all([
        findTouchingLabels(client, sessionId, input.startUs, input.endUs),
        isVocabularyName(client, input.label)
      ])
      const names = known ? [] : await this.vocabularyNames(client)
      const verdict = judgeNewLabel(input, {
        sessionId,
        extent: extentOf(facts),
        known,
        vocabulary: () => names,
        labelCount: facts.labelCount,
        limit: this.maxLabels,
        touching
      })
      switch (verdict.status) {
        case 'refused':
          return verdict
        case 'duplicate':
          return { status: 'duplicate', label: touching.find(stored => stored.id === verdict.labelId) as StoredLabel }
        case 'insert':
          // Closed first: the one-open-label index would refuse a new open label beside it.
          if (verdict.close) await closeLabel(client, verdict.close.id, verdict.close.endUs)
          return { status: 'recorded', label: await insertLabel(client, sessionId, input, actorId), closedLabelId: verdict.close?.id ?? null }
      }
    })
  }

  async change (sessionId: number, labelId: number, change: LabelChange): Promise<ChangeLabelResult> {
    return withTransaction(this.pool, async client => {
      const facts = await lockLabelSession(client, sessionId)
      const current = facts && await findSessionLabel(client, sessionId, labelId)
      if (!facts || !current) return { status: 'not_found' }
      const next = {
        startUs: change.startUs ?? current.startUs,
        endUs: change.endUs ?? current.endUs,
        label: change.label ?? current.label,
        note: change.note === undefined ? current.note : change.note
      }
      const [touching, known] = await Promise.all([
        findTouchingLabels(client, sessionId, next.startUs, next.endUs),
        next.label === current.label ? Promise.resolve(true) : isVocabularyName(client, next.label)
      ])
      const names = known ? [] : await this.vocabularyNames(client)
      const verdict = judgeLabelChange(current, next, { sessionId, extent: extentOf(facts), known, vocabulary: () => names, touching })
      if (verdict.status === 'refused') return verdict
      return { status: 'updated', label: await updateLabel(client, labelId, next) }
    })
  }

  /** Deletes a label; false when the session holds no such label. */
  async remove (sessionId: number, labelId: number): Promise<boolean> {
    return deleteSessionLabel(this.pool, sessionId, labelId)
  }

  async vocabulary (): Promise<VocabularyEntry[]> {
    return listVocabulary(this.pool)
  }

  async addToVocabulary (name: string, description: string | null): Promise<AddVocabularyResult> {
    return addVocabularyName(this.pool, name, description, this.maxVocabulary)
  }

  async removeFromVocabulary (name: string): Promise<'removed' | 'not_found' | 'in_use'> {
    return removeVocabularyName(this.pool, name)
  }

  private async vocabularyNames (client: Pool | PoolClient = this.pool): Promise<string[]> {
    return (await listVocabulary(client)).map(entry => entry.name)
  }
}
