import { parquetMetadata, parquetReadObjects } from 'hyparquet'
import { compressors } from 'hyparquet-compressors'
import { describe, expect, it } from 'vitest'
import { LabelCursor } from '../../src/datasets/label-cursor.js'
import { emptyBatches, parquetFile, ROW_GROUP_ROWS } from '../../src/datasets/parquet-encoding.js'

async function bytesOf (pieces: AsyncIterable<Uint8Array>): Promise<ArrayBuffer> {
  const parts: Uint8Array[] = []
  for await (const piece of pieces) parts.push(piece)
  const buffer = Buffer.concat(parts)
  return buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength)
}

describe('Parquet files', () => {
  it('of a session with no rows still have the layout\'s schema', async () => {
    const none = (async function * () {})()
    const file = await bytesOf(parquetFile(none, {
      rowGroupRows: ROW_GROUP_ROWS.wide,
      createdBy: 'test',
      metadata: { 'motion_ingest.session_id': '7' },
      empty: emptyBatches.wide(7, [false, false, true], new LabelCursor([]).dictionary)
    }))
    const metadata = parquetMetadata(file)
    expect(Number(metadata.num_rows)).toBe(0)
    expect(metadata.schema.slice(1).map(element => element.name)).toEqual([
      'timestamp', 'acc_x', 'acc_y', 'acc_z', 'gyro_x', 'gyro_y', 'gyro_z', 'mag_x', 'mag_y', 'mag_z', 'label', 'session_id', 'segment'
    ])
    expect(metadata.key_value_metadata?.find(entry => entry.key === 'motion_ingest.session_id')?.value).toBe('7')
    expect(await parquetReadObjects({ file, compressors })).toEqual([])
  })
})
