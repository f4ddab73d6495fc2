import { timingSafeEqual } from 'node:crypto'

const BEARER = /^Bearer\s+(\S+)\s*$/i

/** The token of an `Authorization: Bearer <token>` header; undefined for any other header. */
export function bearerToken (header: string | undefined): string | undefined {
  return header === undefined ? undefined : BEARER.exec(header)?.[1]
}

/** Compares a presented secret with the expected one in constant time (for equal lengths). */
export function sameSecret (presented: string, expected: string): boolean {
  const left = Buffer.from(presented)
  const right = Buffer.from(expected)
  return left.length === right.length && timingSafeEqual(left, right)
}
