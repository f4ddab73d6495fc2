import { api, ApiError, auth, download, get, query } from '../api.js'
import { h, fill } from '../dom.js'
import { count, dateTime, duration, epochSeconds, isoOfSeconds, number } from '../format.js'
import { labelColor, SummaryPlot } from '../plot.js'
import { SENSORS, type ReadingsSummary, type Session, type SessionLabels, type SessionReport } from '../types.js'
import { problemText, verdictBadge } from '../verdict.js'

/**
 * One session: what it is, its completeness report, a plot of every sensor
 * with zoom (each zoom asks the server for the visible range), gaps and
 * labels; labelling by dragging; flagging; the CSV, and once it has ended
 * its training-set files (wide CSV and Parquet, windows Parquet).
 */
export function sessionPage (id: number): { element: HTMLElement, dispose: () => void } {
  const status = h('p', { class: 'status', role: 'status' })
  const header = h('div', { class: 'session-header' })
  const actions = h('div', { class: 'actions' })
  const reportSection = h('section', { class: 'report' }, h('h2', {}, 'Completeness report'))
  const metadataSection = h('section', {}, h('h2', {}, 'Metadata'))
  const labelsList = h('div', { class: 'labels-list' })
  const plotStatus = h('p', { class: 'hint', id: 'plot-status' })
  let labelsView: SessionLabels | undefined
  let vocabulary: string[] = []
  let summaryController: AbortController | undefined
  /** The session's first and last reading, in seconds: how far panning and zooming out may go. */
  let extent: [number, number] | undefined

  const labelForm = h('form', { class: 'label-form card', hidden: true })
  const plot = new SummaryPlot({
    sensors: SENSORS,
    onZoom: (from, to) => { loadSummary(from, to).catch(() => {}) },
    onSelect: (from, to) => showLabelForm(from, to)
  })

  const labelToggle = h('input', { type: 'checkbox', id: 'label-mode' })
  labelToggle.addEventListener('change', () => {
    plot.labelMode = labelToggle.checked
    labelForm.hidden = true
  })
  /** Shows [from, to] moved by `shift` widths and scaled by `scale`, kept inside the session. */
  function move (shift: number, scale: number): void {
    const range = plot.range
    if (!range || !extent) return
    const width = Math.min((range[1] - range[0]) * scale, extent[1] - extent[0])
    let from = (range[0] + range[1]) / 2 - width / 2 + shift * width
    from = Math.min(Math.max(from, extent[0]), extent[1] - width)
    loadSummary(from, from + width).catch(() => {})
  }
  const toolbar = h('div', { class: 'toolbar' },
    h('button', { type: 'button', class: 'secondary', id: 'whole-session', onclick: () => { loadSummary().catch(() => {}) } }, 'Whole session'),
    h('button', { type: 'button', class: 'secondary', id: 'pan-earlier', title: 'Earlier', onclick: () => move(-0.5, 1) }, '◀'),
    h('button', { type: 'button', class: 'secondary', id: 'zoom-out', title: 'Zoom out', onclick: () => move(0, 2) }, '−'),
    h('button', { type: 'button', class: 'secondary', id: 'pan-later', title: 'Later', onclick: () => move(0.5, 1) }, '▶'),
    h('label', { class: 'inline' }, labelToggle, ' Label by dragging'),
    plotStatus)

  async function loadSummary (from?: number, to?: number): Promise<void> {
    summaryController?.abort()
    const controller = summaryController = new AbortController()
    const started = performance.now()
    const range = from !== undefined && to !== undefined ? { from: isoOfSeconds(from), to: isoOfSeconds(to) } : {}
    try {
      const summary = await get<ReadingsSummary>(`/sessions/${id}/readings/summary${query({ buckets: plot.width, ...range })}`, controller.signal)
      plot.setSummary(summary)
      if (summary.sessionFirst && summary.sessionLast) extent = [epochSeconds(summary.sessionFirst), epochSeconds(summary.sessionLast) + 1e-6]
      const readings = summary.sensors.reduce((sum, sensor) => sum + sensor.readings, 0)
      plotStatus.textContent = summary.from
        ? `${count(readings)} readings in view, ${summary.buckets} buckets of ${number(summary.bucketMicros / 1000, 1)} ms, ` +
          `${summary.gaps.length}${summary.gapsTruncated ? '+' : ''} gaps; ${Math.round(performance.now() - started)} ms`
        : 'No readings yet.'
    } catch (err) {
      if ((err as Error).name !== 'AbortError') plotStatus.textContent = (err as Error).message
    }
  }

  function labelBands (): void {
    if (!labelsView) return
    const sessionEnd = labelsView.readings ? epochSeconds(labelsView.readings.last) : Date.now() / 1000
    const sorted = labelsView.labels
    plot.setLabels(sorted.map((label, i) => ({
      from: epochSeconds(label.startTime),
      to: label.endTime ? epochSeconds(label.endTime) : sorted[i + 1] ? epochSeconds((sorted[i + 1] as { startTime: string }).startTime) : sessionEnd,
      color: labelColor(label.label)
    })))
    fill(labelsList,
      labelsView.defaultLabel ? h('p', { class: 'hint' }, `Default label (metadata.activity): ${labelsView.defaultLabel}`) : null,
      labelsView.labels.length === 0
        ? h('p', { class: 'hint' }, 'No interval labels yet. Tick “Label by dragging” and drag across the plot.')
        : h('table', { class: 'labels' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Label'), h('th', {}, 'From'), h('th', {}, 'To'), h('th', {}, 'Note'), h('th', {}, ''))),
          h('tbody', {}, ...labelsView.labels.map(label => h('tr', { 'data-label-id': label.id },
            h('td', {}, h('span', { class: `swatch label-${label.label}` }), label.label),
            h('td', {}, dateTime(label.startTime)),
            h('td', {}, label.endTime ? dateTime(label.endTime) : 'open'),
            h('td', {}, label.note ?? ''),
            h('td', {}, h('button', {
              type: 'button',
              class: 'link-button',
              onclick: () => {
                api('DELETE', `/sessions/${id}/labels/${label.id}`).then(loadLabels, (err: Error) => { status.textContent = err.message })
              }
            }, 'Delete')))))))
    // Label swatches take their colour from a stylesheet rule per name, since inline styles are not allowed.
    paintSwatches(labelsView.labels.map(label => label.label))
  }

  async function loadLabels (): Promise<void> {
    labelsView = await get<SessionLabels>(`/sessions/${id}/labels`)
    labelBands()
  }

  function showLabelForm (from: number, to: number): void {
    const name = h('select', { name: 'label', required: true }, ...vocabulary.map(entry => h('option', { value: entry }, entry)))
    const note = h('input', { name: 'note', type: 'text', maxlength: 2000, placeholder: 'Note (optional)' })
    const message = h('span', { class: 'status' })
    fill(labelForm,
      h('strong', {}, `Label ${dateTime(isoOfSeconds(from))} – ${dateTime(isoOfSeconds(to))}`),
      name, note,
      h('button', { type: 'submit' }, 'Save label'),
      h('button', { type: 'button', class: 'secondary', onclick: () => { labelForm.hidden = true; plot.clearSelection() } }, 'Cancel'),
      message)
    labelForm.onsubmit = (event: Event) => {
      event.preventDefault()
      api('POST', `/sessions/${id}/labels`, { startTime: isoOfSeconds(from), endTime: isoOfSeconds(to), label: name.value, ...(note.value ? { note: note.value } : {}) })
        .then(async () => {
          labelForm.hidden = true
          plot.clearSelection()
          await loadLabels()
          status.textContent = `Label ${name.value} saved.`
        }, (err: Error) => { message.textContent = err.message })
    }
    labelForm.hidden = false
  }

  function renderHeader (session: Session): void {
    const seconds = ((session.destroyedAt ? Date.parse(session.destroyedAt) : Date.now()) - Date.parse(session.createdAt)) / 1000
    fill(header,
      h('h1', {}, `Session ${session.id} `, verdictBadge(session), session.flaggedIncorrect ? h('span', { class: 'badge bad' }, 'flagged') : null),
      h('dl', { class: 'facts' },
        h('dt', {}, 'User'), h('dd', {}, `#${session.userId}`),
        h('dt', {}, 'Started'), h('dd', {}, dateTime(session.createdAt)),
        h('dt', {}, session.destroyedAt ? 'Ended' : 'Expires'), h('dd', {}, dateTime(session.destroyedAt ?? session.expiresAt), session.destroyReason ? ` (${session.destroyReason})` : ''),
        h('dt', {}, 'Duration'), h('dd', {}, duration(seconds)),
        h('dt', {}, 'Readings'), h('dd', {}, `${count(session.totalSensorReadingsWritten)} written`, session.totalSensorReadingsSent !== null ? `, ${count(session.totalSensorReadingsSent)} sent` : ''),
        h('dt', {}, 'Integrity'), h('dd', {}, session.integrity ?? '—'),
        session.flaggedIncorrect ? h('dt', {}, 'Flag reason') : null, session.flaggedIncorrect ? h('dd', {}, session.flagReason ?? '') : null))
    const reason = h('input', { name: 'flagReason', type: 'text', maxlength: 2000, placeholder: 'Why it was recorded incorrectly', required: true })
    const flagForm = session.flaggedIncorrect
      ? h('button', { type: 'button', class: 'secondary', id: 'unflag', onclick: () => { patch({ flaggedIncorrect: false }) } }, 'Unflag')
      : h('form', { class: 'inline-form', onsubmit: (event: Event) => { event.preventDefault(); patch({ flaggedIncorrect: true, flagReason: reason.value }) } },
        reason, h('button', { type: 'submit', class: 'secondary', id: 'flag' }, 'Flag'))
    /** `what` names the file in the status line; the training-set files are secondary buttons beside the CSV. */
    const downloadButton = (buttonId: string, path: string, filename: string, text: string, what = text) => h('button', {
      type: 'button',
      id: buttonId,
      class: buttonId === 'download-csv' ? undefined : 'secondary',
      onclick: () => {
        status.textContent = 'Downloading…'
        download(path, filename).then(() => { status.textContent = `${what} downloaded.` }, (err: Error) => { status.textContent = err.message })
      }
    }, text)
    // The training-set files (docs/datasets.md) are laid out once the session has ended.
    const trainingFiles = session.destroyedAt
      ? [
          downloadButton('download-wide-csv', `/sessions/${id}/export?layout=wide&format=csv`, `session-${id}-wide.csv`, 'Wide CSV'),
          downloadButton('download-wide-parquet', `/sessions/${id}/export?layout=wide&format=parquet`, `session-${id}-wide.parquet`, 'Wide Parquet'),
          downloadButton('download-windows-parquet', `/sessions/${id}/export?layout=windows&format=parquet`, `session-${id}-windows.parquet`, 'Windows Parquet')
        ]
      : []
    fill(actions,
      downloadButton('download-csv', `/sessions/${id}/readings.csv`, `session-${id}.csv`, 'Download CSV', 'CSV'),
      ...trainingFiles,
      flagForm,
      auth.user?.role === 'ADMIN' && !session.destroyedAt
        ? h('button', { type: 'button', class: 'danger', onclick: () => { api<Session>('POST', `/sessions/${id}/end`).then(renderAll, (err: Error) => { status.textContent = err.message }) } }, 'End session')
        : null)
    fill(metadataSection, h('h2', {}, 'Metadata'), Object.keys(session.metadata).length === 0
      ? h('p', { class: 'hint' }, 'None.')
      : h('table', { class: 'kv' }, h('tbody', {}, ...Object.entries(session.metadata).map(([key, value]) =>
        h('tr', {}, h('th', {}, key), h('td', {}, typeof value === 'string' ? value : JSON.stringify(value)))))))
  }

  function patch (body: Record<string, unknown>): void {
    api<Session>('PATCH', `/sessions/${id}`, body).then(renderAll, (err: Error) => { status.textContent = err.message })
  }

  function renderAll (session: Session): void {
    renderHeader(session)
    loadReport(session).catch(() => {})
  }

  async function loadReport (session: Session): Promise<void> {
    if (!session.destroyedAt) {
      fill(reportSection, h('h2', {}, 'Completeness report'), h('p', { class: 'hint' }, 'Computed when the session ends.'))
      return
    }
    try {
      fill(reportSection, h('h2', {}, 'Completeness report'), renderReport(await get<SessionReport>(`/sessions/${id}/report`)))
    } catch (err) {
      fill(reportSection, h('h2', {}, 'Completeness report'), h('p', { class: 'status error' }, (err as Error).message))
    }
  }

  async function start (): Promise<void> {
    try {
      const session = await get<Session>(`/sessions/${id}`)
      renderAll(session)
      plot.mount()
      const [, , words] = await Promise.all([
        loadSummary(),
        loadLabels().catch(() => {}),
        get<{ items: Array<{ name: string }> }>('/labels/vocabulary').catch(() => ({ items: [] }))
      ])
      vocabulary = words.items.map(entry => entry.name)
    } catch (err) {
      status.textContent = err instanceof ApiError && err.status === 404 ? `Session ${id} does not exist.` : (err as Error).message
    }
  }
  const element = h('main', { class: 'session' },
    h('p', {}, h('a', { href: '#/sessions' }, '← Sessions')),
    header, actions, status,
    h('section', {}, h('h2', {}, 'Signal'), toolbar, labelForm, plot.element, labelsList),
    reportSection, metadataSection)
  queueMicrotask(() => { start().catch(() => {}) })
  return { element, dispose: () => { summaryController?.abort(); plot.destroy() } }
}

function renderReport (report: SessionReport): HTMLElement {
  const { summary, batches, clock } = report
  const sensorRows = Object.entries(report.sensors).map(([sensor, facts]) => h('tr', {},
    h('th', {}, sensor, facts.expected ? '' : ' (not expected)'),
    h('td', { class: 'number' }, count(facts.readings)),
    h('td', { class: 'number' }, number(facts.achievedHz)),
    h('td', { class: 'number' }, number(facts.intendedHz)),
    h('td', { class: 'number' }, number(facts.medianIntervalMs, 2)),
    h('td', { class: 'number' }, number(facts.jitterMs, 2)),
    h('td', { class: 'number' }, count(facts.gaps.count)),
    h('td', { class: 'number' }, number(facts.gaps.longestMs, 0)),
    h('td', { class: 'number' }, count(facts.duplicateTimestamps))))
  return h('div', {},
    h('p', { id: 'report-verdict' }, summary.complete
      ? h('span', { class: 'badge good' }, 'complete')
      : h('span', { class: 'badge bad' }, 'incomplete'),
    ' ', summary.problems.map(problemText).join(', '),
    summary.warnings.length ? h('small', {}, ` — ${summary.warnings.map(problemText).join(', ')}`) : null),
    h('table', { class: 'report-sensors' },
      h('thead', {}, h('tr', {}, ...['Sensor', 'Readings', 'Hz', 'Intended Hz', 'Median ms', 'Jitter ms', 'Gaps', 'Longest gap ms', 'Duplicates'].map(title => h('th', {}, title)))),
      h('tbody', {}, ...sensorRows)),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Integrity'), h('dd', {}, `${report.integrity.verdict}: ${count(report.integrity.written)} written of ${count(report.integrity.sent)} sent`),
      h('dt', {}, 'Batches'), h('dd', {}, `${count(batches.written)} written, ${count(batches.lost)} lost`,
        batches.lostRanges.length ? ` (${batches.lostRanges.map(([first, last]) => first === last ? String(first) : `${first}–${last}`).join(', ')}${batches.lostRangesTruncated ? ', …' : ''})` : '',
        batches.conflictingResends ? `, ${count(batches.conflictingResends)} conflicting resends` : ''),
      h('dt', {}, 'Clock'), h('dd', {}, clock.offsetMs
        ? `offset ${number(clock.offsetMs.median, 0)} ms (spread ${number(clock.offsetMs.spread, 0)} ms)${clock.driftPpm !== null ? `, drift ${number(clock.driftPpm, 0)} ppm` : ''}`
        : 'unknown')))
}

/** One stylesheet rule per label name for its swatch colour (the policy allows no inline style attribute). */
const painted = new Set<string>()
let swatchSheet: CSSStyleSheet | undefined
function paintSwatches (names: string[]): void {
  swatchSheet ??= (() => { const sheet = new CSSStyleSheet(); document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet]; return sheet })()
  for (const name of names) {
    if (painted.has(name) || !/^[a-z][a-z0-9_]*$/.test(name)) continue
    painted.add(name)
    swatchSheet.insertRule(`.swatch.label-${name} { background: ${labelColor(name)}; }`)
  }
}
