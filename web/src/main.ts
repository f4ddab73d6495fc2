import { auth, whenUnauthorized } from './api.js'
import { h, fill } from './dom.js'
import { livePage } from './pages/live.js'
import { sessionPage } from './pages/session.js'
import { sessionsPage } from './pages/sessions.js'
import { signInPage } from './pages/sign-in.js'
import { myKeysPage, usersPage } from './pages/users.js'
import './style.css'

const root = document.querySelector('#app') as HTMLElement
let dispose: (() => void) | undefined

/** Hash routes: #/sessions, #/sessions/:id, #/live, #/live/:id, #/users, #/keys. */
function render (): void {
  dispose?.()
  dispose = undefined
  const user = auth.user
  if (!auth.token || !user) {
    fill(root, signInPage(() => { location.hash = '#/sessions'; render() }))
    return
  }
  const [, section = 'sessions', id] = location.hash.split('/')
  const numericId = id && /^\d+$/.test(id) ? Number(id) : undefined
  let page: HTMLElement
  if (section === 'sessions' && numericId !== undefined) {
    const view = sessionPage(numericId)
    page = view.element
    dispose = view.dispose
  } else if (section === 'live') {
    const view = livePage(numericId)
    page = view.element
    dispose = view.dispose
  } else if (section === 'users' && user.role === 'ADMIN') {
    page = usersPage()
  } else if (section === 'keys' && user.role === 'BETATESTER') {
    page = myKeysPage()
  } else {
    page = sessionsPage()
  }
  const link = (href: string, text: string, name: string) => h('a', { href, class: section === name ? 'current' : '' }, text)
  fill(root,
    h('header', {},
      h('strong', { class: 'brand' }, 'motion-ingest'),
      h('nav', {},
        link('#/sessions', 'Sessions', 'sessions'),
        link('#/live', 'Live', 'live'),
        user.role === 'ADMIN' ? link('#/users', 'Users', 'users') : link('#/keys', 'Ingest keys', 'keys')),
      h('span', { class: 'who' }, `${user.name} (${user.role === 'ADMIN' ? 'admin' : 'beta tester'})`),
      h('button', { type: 'button', class: 'secondary', id: 'sign-out', onclick: () => { auth.signOut(); render() } }, 'Sign out')),
    page)
}

whenUnauthorized(render)
window.addEventListener('hashchange', render)
render()
