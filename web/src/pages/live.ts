import { auth, get, query, type User } from '../api.js'
import { h, fill } from '../dom.js'
import { count, dateTime } from '../format.js'
import { LiveStream } from '../live-stream.js'
import { SummaryPlot } from '../plot.js'
import { SENSORS, type LiveNotice, type ReadingsSummary, type Session, type SessionPage } from '../types.js'

const PLOT_SECONDS = 10
/** Rate over the notices of about this long. */
const RATE_WINDOW_MS = 5000

interface Watched {
  session: Session
  row: HTMLTableRowElement
  total: HTMLElement
  rate: HTMLElement
  seen: Array<{ at: number, total: number }>
}

/**
 * Sessions recording now, across every instance, each with its running
 * count and rate as batches commit (GET /live), and a plot of the last
 * seconds of the one picked.
 */
export function livePage (selected?: number): { element: HTMLElement, dispose: () => void } {
  const admin = auth.user?.role === 'ADMIN'
  const users = new Map<number, string>()
  const watched = new Map<number, Watched>()
  const state = h('p', { class: 'badge', id: 'live-state' }, 'connecting')
  const detail = h('span', { class: 'hint' })
  const body = h('tbody')
  const empty = h('p', { class: 'hint' }, 'Nobody is recording right now.')
  const plotSection = h('section', { class: 'live-plot', hidden: true })
  let plot: SummaryPlot | undefined
  let plotSession = selected
  let plotBusy = false
  let plotAgain = false
  let listTimer: ReturnType<typeof setTimeout> | undefined

  function row (session: Session): Watched {
    const total = h('td', { class: 'number live-count' }, count(session.totalSensorReadingsWritten))
    const rate = h('td', { class: 'number' }, '—')
    const element = h('tr', { class: 'link', 'data-session-id': session.id, onclick: () => { location.hash = `#/live/${session.id}` } },
      h('td', {}, h('a', { href: `#/sessions/${session.id}` }, String(session.id))),
      admin && h('td', {}, users.get(session.userId) ?? `#${session.userId}`),
      h('td', {}, dateTime(session.createdAt)),
      total, rate)
    return { session, row: element, total, rate, seen: [{ at: performance.now(), total: session.totalSensorReadingsWritten }] }
  }

  async function loadList (): Promise<void> {
    clearTimeout(listTimer)
    const page = await get<SessionPage>(`/sessions${query({ active: true, take: 200 })}`)
    const ids = new Set(page.items.map(session => session.id))
    for (const id of watched.keys()) if (!ids.has(id)) watched.delete(id)
    for (const session of page.items) {
      const known = watched.get(session.id)
      if (known) {
        if (session.totalSensorReadingsWritten > (known.seen.at(-1)?.total ?? 0)) update(known, session.totalSensorReadingsWritten)
      } else {
        watched.set(session.id, row(session))
      }
    }
    fill(body, ...[...watched.values()].map(entry => entry.row))
    empty.hidden = watched.size > 0
    // Sessions end without a notice: the list is read again now and then.
    listTimer = setTimeout(() => { loadList().catch(() => {}) }, 10_000)
  }

  function update (entry: Watched, total: number): void {
    const now = performance.now()
    entry.seen.push({ at: now, total })
    while (entry.seen.length > 2 && now - (entry.seen[0] as { at: number }).at > RATE_WINDOW_MS) entry.seen.shift()
    const first = entry.seen[0] as { at: number, total: number }
    entry.total.textContent = count(total)
    entry.rate.textContent = now > first.at ? `${count(Math.round((total - first.total) / ((now - first.at) / 1000)))}/s` : '—'
    // Restarts the highlight: removed, then added back on the next frame.
    entry.row.classList.remove('pulse')
    requestAnimationFrame(() => entry.row.classList.add('pulse'))
  }

  async function refreshPlot (): Promise<void> {
    if (plotSession === undefined || !plot) return
    if (plotBusy) { plotAgain = true; return }
    plotBusy = true
    try {
      plot.setSummary(await get<ReadingsSummary>(`/sessions/${plotSession}/readings/summary${query({ buckets: Math.min(plot.width, 1000), lastSeconds: PLOT_SECONDS })}`))
    } catch {} finally {
      plotBusy = false
      if (plotAgain) { plotAgain = false; refreshPlot().catch(() => {}) }
    }
  }

  const stream = new LiveStream({
    onEvent: (event, data) => {
      if (event === 'hello') { loadList().catch(() => {}); return }
      if (event === 'status') {
        const listening = (data as { listening: boolean }).listening
        state.textContent = listening ? 'live' : 'behind'
        detail.textContent = listening ? 'Counts reloaded after a pause in notices.' : 'The server lost its notifications; counts may lag.'
        if (listening) loadList().catch(() => {})
        return
      }
      if (event !== 'batch') return
      const notice = data as LiveNotice
      const entry = watched.get(notice.sessionId)
      if (entry) update(entry, notice.counts.total)
      else loadList().catch(() => {})
      if (notice.sessionId === plotSession) refreshPlot().catch(() => {})
    },
    onState: (next, why) => {
      state.textContent = next === 'open' ? 'live' : next
      state.className = `badge ${next === 'open' ? 'good' : next === 'connecting' ? '' : 'bad'}`
      detail.textContent = next === 'retrying' ? `Reconnecting (${why ?? 'lost'})…` : ''
    }
  })

  async function start (): Promise<void> {
    if (admin) {
      const page = await get<{ items: User[] }>('/users?take=500').catch(() => ({ items: [] }))
      for (const user of page.items) users.set(user.id, user.name)
    }
    stream.start()
    if (plotSession !== undefined) {
      plotSection.hidden = false
      plot = new SummaryPlot({ sensors: SENSORS, height: 140 })
      fill(plotSection, h('h2', {}, `Session ${plotSession}: the last ${PLOT_SECONDS} s`), plot.element)
      plot.mount()
      await refreshPlot()
    }
  }
  queueMicrotask(() => { start().catch(() => {}) })

  const element = h('main', { class: 'live' },
    h('h1', {}, 'Recording now ', state), detail,
    h('table', { class: 'sessions' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Session'), admin && h('th', {}, 'User'), h('th', {}, 'Started'), h('th', { class: 'number' }, 'Readings'), h('th', { class: 'number' }, 'Rate'))),
      body),
    empty, plotSection)
  return {
    element,
    dispose: () => {
      stream.stop()
      clearTimeout(listTimer)
      plot?.destroy()
      plotSession = undefined
    }
  }
}
