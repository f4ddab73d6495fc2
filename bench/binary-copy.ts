/**
 * PostgreSQL binary COPY encoding of readings rows
 * (session_id int8, ts timestamptz, sensor int2, x, y, z float8).
 */

export const COPY_READINGS_BINARY = 'copy readings (session_id, ts, sensor, x, y, z) from stdin (format binary)'

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1')
/** Field count (2) + 6 length words (24) + 8 + 8 + 2 + 3 * 8 bytes of data. */
export const BINARY_ROW_BYTES = 2 + 6 * 4 + 8 + 8 + 2 + 24
/** Milliseconds between the Unix epoch and PostgreSQL's (2000-01-01). */
const PG_EPOCH_MS = 946_684_800_000
const TWO_32 = 4_294_967_296

/** Signature, flags and header-extension length. */
export function binaryHeader (): Buffer {
  const header = Buffer.alloc(SIGNATURE.length + 8)
  SIGNATURE.copy(header, 0)
  return header
}

/** The file trailer: a field count of -1. */
export function binaryTrailer (): Buffer {
  const trailer = Buffer.alloc(2)
  trailer.writeInt16BE(-1, 0)
  return trailer
}

// A safe non-negative integer as int8 without BigInt; the high word carries the sign.
function writeInt64 (buffer: Buffer, value: number, offset: number): void {
  const high = Math.floor(value / TWO_32)
  buffer.writeInt32BE(high, offset)
  buffer.writeUInt32BE(value - high * TWO_32, offset + 4)
}

/** Appends rows to a preallocated buffer; `offset` is where the next row goes. */
export class BinaryRowWriter {
  offset = 0
  constructor (readonly buffer: Buffer) {}

  static forRows (rows: number): BinaryRowWriter {
    return new BinaryRowWriter(Buffer.allocUnsafe(rows * BINARY_ROW_BYTES))
  }

  row (sessionId: number, ms: number, sensor: number, x: number, y: number, z: number): void {
    const b = this.buffer
    let o = this.offset
    b.writeInt16BE(6, o); o += 2
    b.writeInt32BE(8, o); o += 4
    writeInt64(b, sessionId, o); o += 8
    b.writeInt32BE(8, o); o += 4
    writeInt64(b, Math.round((ms - PG_EPOCH_MS) * 1000), o); o += 8
    b.writeInt32BE(2, o); o += 4
    b.writeInt16BE(sensor, o); o += 2
    b.writeInt32BE(8, o); o += 4
    b.writeDoubleBE(x, o); o += 8
    b.writeInt32BE(8, o); o += 4
    b.writeDoubleBE(y, o); o += 8
    b.writeInt32BE(8, o); o += 4
    b.writeDoubleBE(z, o); o += 8
    this.offset = o
  }

  /** The rows written so far. */
  bytes (): Buffer {
    return this.buffer.subarray(0, this.offset)
  }
}
