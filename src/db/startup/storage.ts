import type { Pool } from '../pool.js'

/** What the readings table lives on, as reported by /status and the logs. */
export interface StorageInfo {
  kind: 'timescaledb' | 'postgresql'
  postgresVersion: string
  timescaledbVersion: string | null
  readingsHypertable: boolean
  embedded: boolean
}

export async function detectStorage (pool: Pool, embedded: boolean): Promise<StorageInfo> {
  const { rows: [row] } = await pool.query<{ server_version: string, timescaledb: string | null }>(`
    select current_setting('server_version') as server_version,
      (select extversion from pg_extension where extname = 'timescaledb') as timescaledb`)
  const timescaledbVersion = row?.timescaledb ?? null
  let readingsHypertable = false
  if (timescaledbVersion) {
    const { rowCount } = await pool.query(`select 1 from timescaledb_information.hypertables
      where hypertable_name = 'readings' and hypertable_schema = current_schema()`)
    readingsHypertable = (rowCount ?? 0) > 0
  }
  return {
    kind: readingsHypertable ? 'timescaledb' : 'postgresql',
    postgresVersion: row?.server_version ?? 'unknown',
    timescaledbVersion,
    readingsHypertable,
    embedded
  }
}
