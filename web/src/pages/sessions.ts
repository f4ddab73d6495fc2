import { auth, get, query, type User } from '../api.js'
import { h } from '../dom.js'
import { count, dateTime, duration } from '../format.js'
import type { Session, SessionPage } from '../types.js'
import { problemText, verdictBadge } from '../verdict.js'

const PAGE = 50

interface Filters {
  active: string
  incomplete: string
  integrity: string
  flagged: string
  label: string
  userId: string
  from: string
  to: string
  sort: string
}

const select = (name: string, options: Array<[string, string]>, onchange: () => void) =>
  h('select', { name, onchange }, ...options.map(([value, text]) => h('option', { value }, text)))

/** The sessions list: filters, a table with each session's verdict, and pages by cursor. */
export function sessionsPage (): HTMLElement {
  const admin = auth.user?.role === 'ADMIN'
  const users = new Map<number, User>()
  const body = h('tbody')
  const summary = h('p', { class: 'hint', id: 'sessions-total' })
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'More')
  const status = h('p', { class: 'status', role: 'status' })
  let nextCursor: string | null | undefined = null
  let generation = 0

  const filterForm = h('form', { class: 'filters', onsubmit: (event: Event) => { event.preventDefault(); reload() } })
  const changed = () => reload()
  const fields = {
    active: select('active', [['', 'Recording and ended'], ['true', 'Recording now'], ['false', 'Ended']], changed),
    incomplete: select('incomplete', [['', 'Any verdict'], ['true', 'Incomplete'], ['false', 'Complete']], changed),
    integrity: select('integrity', [['', 'Any integrity'], ['ok', 'Integrity ok'], ['mismatch', 'Integrity mismatch'], ['unreported', 'Unreported']], changed),
    flagged: select('flagged', [['', 'Flagged or not'], ['true', 'Flagged'], ['false', 'Not flagged']], changed),
    label: select('label', [['', 'Any label']], changed),
    userId: select('userId', [['', 'Every user']], changed),
    from: h('input', { type: 'date', name: 'from', onchange: changed, 'aria-label': 'Started from' }),
    to: h('input', { type: 'date', name: 'to', onchange: changed, 'aria-label': 'Started before' }),
    sort: select('sort', [['-createdAt', 'Newest first'], ['createdAt', 'Oldest first'], ['-readings', 'Most readings'], ['readings', 'Fewest readings']], changed)
  }
  if (!admin) fields.userId.hidden = true
  filterForm.append(...Object.values(fields))

  const read = (): Filters => Object.fromEntries(Object.entries(fields).map(([name, field]) => [name, field.value])) as unknown as Filters

  function row (session: Session): HTMLTableRowElement {
    const seconds = ((session.destroyedAt ? Date.parse(session.destroyedAt) : Date.now()) - Date.parse(session.createdAt)) / 1000
    const owner = users.get(session.userId)
    const open = () => { location.hash = `#/sessions/${session.id}` }
    return h('tr', { class: 'link', 'data-session-id': session.id, tabindex: 0, onclick: open, onkeydown: (event: Event) => { if ((event as KeyboardEvent).key === 'Enter') open() } },
      h('td', {}, h('a', { href: `#/sessions/${session.id}` }, String(session.id))),
      admin && h('td', {}, owner ? owner.name : `#${session.userId}`),
      h('td', {}, dateTime(session.createdAt)),
      h('td', {}, session.destroyedAt ? duration(seconds) : h('span', { class: 'badge live' }, 'recording')),
      h('td', { class: 'number' }, count(session.totalSensorReadingsWritten)),
      h('td', {}, session.integrity ?? '—'),
      h('td', { class: 'verdict' }, verdictBadge(session), session.report && !session.report.complete ? h('small', {}, session.report.problems.map(problemText).join(', ')) : null),
      h('td', {}, (session.labels ?? []).join(', ') || '—'),
      h('td', {}, session.flaggedIncorrect ? h('span', { class: 'badge bad', title: session.flagReason ?? '' }, 'flagged') : ''))
  }

  async function load (append: boolean): Promise<void> {
    const mine = ++generation
    const filters = read()
    const path = `/sessions${query({
      take: PAGE,
      active: filters.active,
      incomplete: filters.incomplete,
      integrity: filters.integrity,
      flagged: filters.flagged,
      label: filters.label,
      userId: filters.userId,
      from: filters.from && new Date(`${filters.from}T00:00:00`).toISOString(),
      to: filters.to && new Date(`${filters.to}T00:00:00`).toISOString(),
      sort: filters.sort,
      cursor: append ? nextCursor : undefined
    })}`
    status.textContent = 'Loading…'
    try {
      const page = await get<SessionPage>(path)
      if (mine !== generation) return
      if (!append) body.replaceChildren()
      body.append(...page.items.map(row))
      nextCursor = page.nextCursor
      more.hidden = !nextCursor
      summary.textContent = `${count(page.total)} session${page.total === 1 ? '' : 's'}`
      status.textContent = page.total === 0 ? 'No session matches.' : ''
    } catch (err) {
      status.textContent = (err as Error).message
    }
  }
  const reload = () => { nextCursor = null; load(false).catch(() => {}) }
  more.addEventListener('click', () => { load(true).catch(() => {}) })

  async function start (): Promise<void> {
    const vocabulary = await get<{ items: Array<{ name: string }> }>('/labels/vocabulary').catch(() => ({ items: [] }))
    fields.label.append(...vocabulary.items.map(entry => h('option', { value: entry.name }, entry.name)))
    if (admin) {
      const page = await get<{ items: User[] }>('/users?take=500').catch(() => ({ items: [] }))
      for (const user of page.items) users.set(user.id, user)
      fields.userId.append(...page.items.filter(user => user.role === 'BETATESTER').map(user => h('option', { value: user.id }, user.name)))
    }
    await load(false)
  }
  start().catch(() => {})

  const table = h('table', { class: 'sessions' },
    h('thead', {}, h('tr', {},
      h('th', {}, 'Session'), admin && h('th', {}, 'User'), h('th', {}, 'Started'), h('th', {}, 'Duration'),
      h('th', { class: 'number' }, 'Readings'), h('th', {}, 'Integrity'), h('th', {}, 'Verdict'), h('th', {}, 'Labels'), h('th', {}, 'Flag'))),
    body)
  return h('main', {}, h('h1', {}, 'Sessions'), filterForm, summary, table, more, status)
}
