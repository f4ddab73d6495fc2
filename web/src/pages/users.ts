import { api, get, type User } from '../api.js'
import { h, fill } from '../dom.js'
import { dateTime } from '../format.js'

interface IngestKey { id: number, label: string | null, createdAt: string, lastUsedAt: string | null }
interface MintedKey { id: number, key: string, pushUrl: string }

/**
 * Ingest keys of one user under `base` (/me or /users/:id): listed without
 * their secrets, minted (the key shown this once), revoked.
 */
export function ingestKeysPanel (base: string): HTMLElement {
  const list = h('tbody')
  const shown = h('div', { class: 'minted', hidden: true })
  const status = h('span', { class: 'status' })
  const label = h('input', { name: 'label', type: 'text', maxlength: 100, placeholder: 'Phone or app (optional)' })

  async function load (): Promise<void> {
    const { items } = await get<{ items: IngestKey[] }>(`${base}/ingest-keys`)
    fill(list, ...items.map(key => h('tr', {},
      h('td', {}, key.label ?? '—'), h('td', {}, dateTime(key.createdAt)), h('td', {}, key.lastUsedAt ? dateTime(key.lastUsedAt) : 'never'),
      h('td', {}, h('button', {
        type: 'button',
        class: 'link-button',
        onclick: () => { api('DELETE', `${base}/ingest-keys/${key.id}`).then(load, (err: Error) => { status.textContent = err.message }) }
      }, 'Revoke')))))
    if (items.length === 0) list.append(h('tr', {}, h('td', { colspan: 4, class: 'hint' }, 'No ingest keys.')))
  }

  const form = h('form', {
    class: 'inline-form',
    onsubmit: (event: Event) => {
      event.preventDefault()
      api<MintedKey>('POST', `${base}/ingest-keys`, label.value ? { label: label.value } : {}).then(async minted => {
        label.value = ''
        fill(shown, h('p', {}, 'Copy this key now: it is not shown again.'),
          h('code', { class: 'secret' }, minted.key),
          h('p', { class: 'hint' }, 'Sensor Logger push URL: this service\'s origin followed by ', h('code', {}, minted.pushUrl)))
        shown.hidden = false
        await load()
      }, (err: Error) => { status.textContent = err.message })
    }
  }, label, h('button', { type: 'submit', class: 'secondary' }, 'Mint ingest key'), status)

  load().catch((err: Error) => { status.textContent = err.message })
  return h('div', { class: 'ingest-keys' },
    h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Label'), h('th', {}, 'Created'), h('th', {}, 'Last used'), h('th', {}, ''))), list),
    form, shown)
}

/** Admins: users (create, delete) and their ingest keys. */
export function usersPage (): HTMLElement {
  const body = h('tbody')
  const status = h('p', { class: 'status', role: 'status' })
  const keys = h('section', { class: 'keys' })

  async function load (): Promise<void> {
    const { items } = await get<{ items: User[] }>('/users?take=500')
    fill(body, ...items.map(user => h('tr', { 'data-user-id': user.id },
      h('td', {}, String(user.id)), h('td', {}, user.name), h('td', {}, user.email), h('td', {}, user.role),
      h('td', { class: 'key' }, user.publicKey), h('td', {}, dateTime(user.createdAt)),
      h('td', {},
        user.role === 'BETATESTER'
          ? h('button', { type: 'button', class: 'link-button', onclick: () => fill(keys, h('h2', {}, `Ingest keys of ${user.name}`), ingestKeysPanel(`/users/${user.id}`)) }, 'Ingest keys')
          : null,
        ' ',
        h('button', {
          type: 'button',
          class: 'link-button danger',
          onclick: () => {
            if (!confirm(`Delete ${user.name} with all their sessions and readings?`)) return
            api<{ deleted: { sessions: number, readings: number } }>('DELETE', `/users/${user.id}`).then(async result => {
              status.textContent = `Deleted ${user.name}: ${result.deleted.sessions} sessions, ${result.deleted.readings} readings.`
              await load()
            }, (err: Error) => { status.textContent = err.message })
          }
        }, 'Delete')))))
  }

  const fields = {
    name: h('input', { name: 'name', type: 'text', required: true, maxlength: 200, placeholder: 'Name' }),
    email: h('input', { name: 'email', type: 'email', required: true, placeholder: 'Email' }),
    publicKey: h('input', { name: 'publicKey', type: 'text', required: true, maxlength: 512, placeholder: 'Public key (0x… address or Ed25519)' }),
    role: h('select', { name: 'role' }, h('option', { value: 'BETATESTER' }, 'Beta tester'), h('option', { value: 'ADMIN' }, 'Admin'))
  }
  const create = h('form', {
    class: 'inline-form card',
    onsubmit: (event: Event) => {
      event.preventDefault()
      api<User>('POST', '/users', { name: fields.name.value, email: fields.email.value, publicKey: fields.publicKey.value, role: fields.role.value })
        .then(async user => {
          status.textContent = `Created ${user.name}.`
          create.reset()
          await load()
        }, (err: Error) => { status.textContent = err.message })
    }
  }, h('strong', {}, 'New user'), ...Object.values(fields), h('button', { type: 'submit' }, 'Create'))

  load().catch((err: Error) => { status.textContent = err.message })
  return h('main', {}, h('h1', {}, 'Users'), create, status,
    h('table', { class: 'users' },
      h('thead', {}, h('tr', {}, ...['ID', 'Name', 'Email', 'Role', 'Public key', 'Created', ''].map(title => h('th', {}, title)))), body),
    keys)
}

/** A beta tester's own ingest keys, for Sensor Logger's HTTP push. */
export function myKeysPage (): HTMLElement {
  return h('main', {}, h('h1', {}, 'My ingest keys'),
    h('p', { class: 'hint' }, 'A key lets Sensor Logger record for you over HTTP push or MQTT. Revoke it when a phone is lost.'),
    ingestKeysPanel('/me'))
}
