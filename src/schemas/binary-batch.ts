/**
 * Binary batches (docs/protocol.md, "Binary batches"): a phone that opens the
 * recording socket with this WebSocket subprotocol may send
 * write_sensor_readings_batch as one CBOR item in a binary frame, its readings
 * as RFC 8746 typed arrays. Every other frame, and every answer, stays JSON
 * text; a phone that does not offer the subprotocol sees nothing new.
 */
export const BINARY_BATCH_SUBPROTOCOL = 'motion-ingest.cbor.v1'

/** The columns of a binary batch's `sensor_readings` map, in the order issues are reported. */
export const BINARY_BATCH_COLUMNS = ['timestampBase', 'timestamp', 'sensor', 'xAxis', 'yAxis', 'zAxis'] as const
