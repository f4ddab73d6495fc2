import { api, auth, ApiError, type User } from '../api.js'
import { h } from '../dom.js'

interface TokenResponse { accessToken: string, user: User }
interface Challenge { message: string, nonce: string }

interface Eip1193Provider {
  request: (args: { method: string, params?: unknown[] }) => Promise<unknown>
}

const wallet = () => (window as unknown as { ethereum?: Eip1193Provider }).ethereum

const hexOfText = (text: string) => '0x' + [...new TextEncoder().encode(text)].map(byte => byte.toString(16).padStart(2, '0')).join('')

/**
 * Sign in with the service's own schemes: email and public key (where the
 * service allows it), or a wallet's personal_sign over a one-time challenge
 * (/auth/challenge, /auth/verify) where the browser has one.
 */
export function signInPage (done: () => void): HTMLElement {
  const status = h('p', { class: 'status', role: 'status' })
  const fail = (err: unknown) => {
    status.textContent = err instanceof ApiError ? `${err.message} (${err.code})` : `Could not sign in: ${(err as Error).message}`
    status.className = 'status error'
  }
  const finish = (token: TokenResponse) => {
    auth.signIn(token.accessToken, token.user)
    done()
  }

  const email = h('input', { name: 'email', type: 'email', required: true, autocomplete: 'username' })
  const publicKey = h('input', { name: 'publicKey', type: 'password', required: true, autocomplete: 'current-password' })
  const form = h('form', {
    class: 'card',
    onsubmit: (event: Event) => {
      event.preventDefault()
      status.textContent = 'Signing in…'
      status.className = 'status'
      api<TokenResponse>('POST', '/auth/login', { email: email.value, publicKey: publicKey.value }).then(finish, fail)
    }
  },
  h('h2', {}, 'Email and public key'),
  h('label', {}, 'Email', email),
  h('label', {}, 'Public key', publicKey),
  h('button', { type: 'submit' }, 'Sign in'))

  const provider = wallet()
  const walletCard = provider
    ? h('div', { class: 'card' },
      h('h2', {}, 'Wallet'),
      h('p', {}, 'Sign a one-time message with your wallet; nothing is sent to any chain.'),
      h('button', {
        type: 'button',
        id: 'wallet-sign-in',
        onclick: () => {
          status.textContent = 'Waiting for the wallet…'
          status.className = 'status'
          signInWithWallet(provider).then(finish, fail)
        }
      }, 'Sign in with wallet'))
    : h('p', { class: 'hint' }, 'No wallet in this browser: signature sign-in needs one (window.ethereum).')

  return h('main', { class: 'sign-in' }, h('h1', {}, 'motion-ingest'), form, walletCard, status)
}

async function signInWithWallet (provider: Eip1193Provider): Promise<TokenResponse> {
  const [address] = await provider.request({ method: 'eth_requestAccounts' }) as string[]
  if (!address) throw new Error('the wallet gave no account')
  const challenge = await api<Challenge>('POST', '/auth/challenge', { publicKey: address })
  const signature = await provider.request({ method: 'personal_sign', params: [hexOfText(challenge.message), address] }) as string
  return api<TokenResponse>('POST', '/auth/verify', { publicKey: address, signature, nonce: challenge.nonce })
}
