import { createHmac, randomBytes } from 'node:crypto'

/**
 * How users are named in a dataset: by a pseudonym, HMAC-SHA256 of the user
 * id under a secret key (a plain hash of a small integer would be undone by
 * trying every id), or by their id when the admin asks for it.
 */
export interface UserNaming {
  kind: 'pseudonym' | 'id'
  /** `stable`: the configured key, the same pseudonym in every export; `per-export`: a key drawn for this export only. */
  key: 'stable' | 'per-export' | null
  nameOf: (userId: number) => string
}

export function userNaming (options: { realIds: boolean, key?: string | undefined }): UserNaming {
  if (options.realIds) return { kind: 'id', key: null, nameOf: userId => String(userId) }
  const key = options.key !== undefined && options.key !== '' ? Buffer.from(options.key, 'utf8') : randomBytes(32)
  return {
    kind: 'pseudonym',
    key: options.key ? 'stable' : 'per-export',
    nameOf: userId => `u_${createHmac('sha256', key).update(String(userId)).digest('hex').slice(0, 16)}`
  }
}
