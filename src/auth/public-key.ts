/**
 * The one stored form of a public key. Keys are compared in this form at
 * login and kept unique in it, so the same key written two ways is one key.
 */
export function normalizePublicKey (publicKey: string): string {
  return publicKey.trim()
}
