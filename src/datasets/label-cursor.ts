/** A stretch [startUs, endUs) with one label, or none (null). */
export interface LabelSpan {
  startUs: number
  endUs: number
  label: string | null
}

/**
 * The label of instants asked in non-decreasing order, as an index into a
 * dictionary of the session's labels (sorted names, fixed up front, so every
 * file of the session shares it), or -1 where no label applies.
 */
export class LabelCursor {
  readonly dictionary: readonly string[]
  private readonly spans: Array<{ startUs: number, endUs: number, index: number }>
  private at_ = 0

  /** spans: in time order, not overlapping (the label rules keep them so). */
  constructor (spans: readonly LabelSpan[]) {
    const names = [...new Set(spans.map(span => span.label).filter((label): label is string => label !== null))].sort()
    this.dictionary = names
    this.spans = spans
      .filter(span => span.label !== null && span.endUs > span.startUs)
      .map(span => ({ startUs: span.startUs, endUs: span.endUs, index: names.indexOf(span.label as string) }))
      .sort((a, b) => a.startUs - b.startUs)
  }

  /** The label index at `us`; each call's instant must be no earlier than the previous one's. */
  indexAt (us: number): number {
    while (this.at_ < this.spans.length && (this.spans[this.at_] as { endUs: number }).endUs <= us) this.at_++
    const span = this.spans[this.at_]
    return span !== undefined && span.startUs <= us ? span.index : -1
  }
}
