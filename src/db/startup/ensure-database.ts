import pg from 'pg'

/**
 * Creates the database named in the connection string when it does not exist,
 * by connecting to the server's `postgres` maintenance database.
 * Returns true when it created one.
 */
export async function ensureDatabase (connectionString: string): Promise<boolean> {
  const url = new URL(connectionString)
  const name = decodeURIComponent(url.pathname.replace(/^\//, '')) || 'postgres'
  const probe = new pg.Client({ connectionString })
  // A connection lost while connected (a FATAL from the server) is an 'error' event, which
  // unhandled would end the process; the pending call rejects with it anyway.
  probe.on('error', () => {})
  try {
    await probe.connect()
    return false
  } catch (err) {
    if ((err as { code?: string }).code !== '3D000') throw err // 3D000: invalid_catalog_name
  } finally {
    await probe.end().catch(() => {})
  }
  url.pathname = '/postgres'
  const admin = new pg.Client({ connectionString: url.toString() })
  admin.on('error', () => {})
  await admin.connect()
  try {
    await admin.query(`create database ${pg.escapeIdentifier(name)}`)
    return true
  } catch (err) {
    if ((err as { code?: string }).code === '42P04') return false // created concurrently by another instance
    throw err
  } finally {
    await admin.end().catch(() => {})
  }
}
