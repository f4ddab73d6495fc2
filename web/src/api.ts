/**
 * Every call to the service: the access token in the Authorization header,
 * never in a URL; errors in the service's { error, message } shape.
 */

export interface User {
  id: number
  name: string
  email: string
  publicKey: string
  role: 'ADMIN' | 'BETATESTER'
  createdAt: string
}

const TOKEN_KEY = 'motion-ingest.token'
const USER_KEY = 'motion-ingest.user'

/** Kept for the tab only (sessionStorage): gone when the tab closes, never in a URL or a log. */
export const auth = {
  get token (): string | null {
    return sessionStorage.getItem(TOKEN_KEY)
  },
  get user (): User | null {
    const text = sessionStorage.getItem(USER_KEY)
    return text ? JSON.parse(text) as User : null
  },
  signIn (token: string, user: User): void {
    sessionStorage.setItem(TOKEN_KEY, token)
    sessionStorage.setItem(USER_KEY, JSON.stringify(user))
  },
  signOut (): void {
    sessionStorage.removeItem(TOKEN_KEY)
    sessionStorage.removeItem(USER_KEY)
  }
}

export class ApiError extends Error {
  constructor (readonly status: number, readonly code: string, message: string) {
    super(message)
  }
}

/** Called when the token is refused (expired, revoked): the page shows the sign-in form. */
let onUnauthorized: () => void = () => {}
export function whenUnauthorized (handler: () => void): void {
  onUnauthorized = handler
}

export function authHeaders (): Record<string, string> {
  const token = auth.token
  return token ? { authorization: `Bearer ${token}` } : {}
}

export async function request (method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
  const headers: Record<string, string> = { ...authHeaders() }
  if (body !== undefined) headers['content-type'] = 'application/json'
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal })
  if (response.ok) return response
  let code = `HTTP_${response.status}`
  let message = response.statusText
  try {
    const problem = await response.json() as { error?: string, message?: string }
    code = problem.error ?? code
    message = problem.message ?? message
  } catch {}
  if (response.status === 401 && auth.token) {
    auth.signOut()
    onUnauthorized()
  }
  throw new ApiError(response.status, code, message)
}

export async function api<T> (method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const response = await request(method, path, body, signal)
  return await response.json() as T
}

export const get = <T>(path: string, signal?: AbortSignal) => api<T>('GET', path, undefined, signal)

/** A query string from the defined values only. */
export function query (values: Record<string, string | number | boolean | undefined | null>): string {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(values)) {
    if (value !== undefined && value !== null && value !== '') params.set(key, String(value))
  }
  const text = params.toString()
  return text ? `?${text}` : ''
}

/** The name a Content-Disposition header gives the file (`attachment; filename="session-12.csv"`), if any. */
function attachmentName (response: Response): string | undefined {
  return /filename="([^"]+)"/.exec(response.headers.get('content-disposition') ?? '')?.[1]
}

/**
 * Downloads a file through fetch, so the token goes in the header as for
 * every call, then hands the bytes to the browser as a file, under the name
 * the server gives it (it knows the grid rate it chose), else `filename`.
 */
export async function download (path: string, filename: string): Promise<void> {
  const response = await request('GET', path)
  const url = URL.createObjectURL(await response.blob())
  const link = document.createElement('a')
  link.href = url
  link.download = attachmentName(response) ?? filename
  document.body.append(link)
  link.click()
  link.remove()
  setTimeout(() => URL.revokeObjectURL(url), 60_000)
}
