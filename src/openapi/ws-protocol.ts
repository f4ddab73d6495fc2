import { BINARY_BATCH_SUBPROTOCOL } from '../schemas/binary-batch.js'
import type { CLIENT_EVENTS, ErrorEventCode, ServerEvents } from '../schemas/ws-events.js'

/** Every event and error code the protocol has, by name: docs/protocol.md is tested against them. */
export function protocolNames (): { clientEvents: string[], serverEvents: string[], errorCodes: string[] } {
  const facts: WsProtocolFacts = { batchSize: 0, sessionTtlSeconds: 0, maxPayloadBytes: 0, createSessionTimeoutMs: 0, pingIntervalMs: 0, maxConnectionsPerUser: 0, maxInflightBatches: 0 }
  return { clientEvents: Object.keys(clientEvents(facts)), serverEvents: Object.keys(serverEvents(facts)), errorCodes: Object.keys(errorCodes) }
}

/** The limits the WebSocket description quotes, as configured on this instance. */
export interface WsProtocolFacts {
  batchSize: number
  sessionTtlSeconds: number
  maxPayloadBytes: number
  createSessionTimeoutMs: number
  pingIntervalMs: number
  maxConnectionsPerUser: number
  maxInflightBatches: number
}

interface EventDoc { data: string, when?: string }

// Records keyed by the event types of src/schemas/ws-events.ts: an event
// added there and not described here fails to compile.
const clientEvents = (f: WsProtocolFacts): Record<keyof typeof CLIENT_EVENTS, EventDoc> => ({
  create_session: { data: '`{}` or `{"metadata": {...}}`: free-form labels (device model and OS, app version, sample rate, activity, where the phone is carried, bike type, terrain, notes), at most SESSION_METADATA_MAX_BYTES of JSON' },
  write_sensor_readings_batch: { data: `\`{"batch_id": int 0…2147483647, "sensor_readings": [reading × ${f.batchSize}]}\`` },
  destroy_session: { data: '`{}` or `{"totalSensorReadingsSent": int}`' },
  label: { data: '`{"startTime", "endTime"?, "label", "note"?}`: the interval [startTime, endTime) of the active session carries `label` (a vocabulary name, any case; times ISO-8601 with offset or epoch ms). Without `endTime` the label is open: the next label closes it at its start, else the session\'s end. Rules: docs/labels.md' }
})

const serverEvents = (f: WsProtocolFacts): Record<keyof ServerEvents, EventDoc> => ({
  session_created: { data: '`{sessionId, createdAt, expiresAt}`', when: 'a new session' },
  session_already_exist: { data: '`{sessionId, createdAt}`', when: 'the user already has an active session (also how a phone resumes after a reconnect)' },
  sensor_readings_batch_written: { data: '`{sessionId, batchId, totalSensorReadingsWritten}`', when: 'only after the batch is durably committed' },
  invalid_sensor_readings_batch_size: { data: '`{sessionId, batchId, expected, received}`', when: `the batch does not hold exactly ${f.batchSize} readings` },
  invalid_sensor_reading_schema: { data: '`{sessionId, batchId, issues: [{path, message}]}`', when: 'a reading or field is malformed (paths like `["sensor_readings", 200, "xAxis"]`)' },
  session_destroyed: {
    data: '`{sessionId, destroyedAt, reason, totalSensorReadingsWritten, integrity, report}`; `report` is the completeness report in short (`{complete, problems, warnings, lostBatches, gaps, duplicateTimestamps, missingSensors, clockOffsetMs, conflictingResends}`, see `GET /sessions/{id}/report`), or null when it could not be computed (timeout, database unavailable); the reaper computes it later',
    when: 'on request (`client`), on expiry (`expired`) or by an admin (`admin`)'
  },
  session_not_found: { data: '`{}`', when: 'write or destroy with no active session' },
  storage_unavailable: { data: '`{sessionId, batchId, message, retryable: true}`', when: 'the batch was not acknowledged (database unreachable, server shutting down, or no answer to its commit in time): send it again. Usually nothing was written; when the commit\'s answer was lost it may have been, and the resend is then acknowledged from the ledger, never written twice. `sessionId` is null when a resuming phone\'s session could not be looked up' },
  batch_conflict: { data: '`{sessionId, batchId, message}`', when: 'the `batch_id` is already written with other readings: this batch was not stored (the first content stays) and resending it does not help; counted in the completeness report' },
  label_recorded: { data: '`{sessionId, labelId, startTime, endTime, label, duplicate, closedLabelId}`', when: 'the label is stored; `duplicate: true` when it was already (a resend); `closedLabelId` is the open label it ended' },
  label_refused: { data: '`{sessionId, code, message, labelId}`', when: 'the label was not stored: `code` is `unknown_label`, `label_outside_session`, `label_overlap` (`labelId` is the label in the way) or `label_limit`' },
  error: { data: '`{code, message, issues?}`', when: 'a frame that is not a protocol message (codes below); the socket stays open' }
})

const errorCodes: Record<ErrorEventCode, string> = {
  invalid_json: 'the frame is not JSON',
  invalid_frame: 'not `{"event": string, "data": object}`, or a binary frame that is not a CBOR batch',
  unknown_event: 'an event name the server does not know',
  invalid_event_data: 'create_session, destroy_session or label data of the wrong shape',
  binary_frames_not_supported: 'frames must be text (on a socket that did not ask for binary batches)',
  metadata_too_large: 'metadata over SESSION_METADATA_MAX_BYTES',
  storage_unavailable: 'a session command hit a database outage: send it again',
  internal_error: 'the server failed on this frame'
}

const table = (header: string, rows: string[][]) =>
  [header, header.replace(/[^|]+/g, ' --- '), ...rows.map(cells => `| ${cells.join(' | ')} |`)].join('\n')

/**
 * The recording protocol of `GET /ws` in markdown. Fastify cannot describe
 * WebSocket frames, so the OpenAPI document carries it as prose; the numbers
 * are this instance's settings.
 */
export function wsProtocolMarkdown (facts: WsProtocolFacts): string {
  const client = Object.entries(clientEvents(facts)).map(([event, doc]) => [`\`${event}\``, doc.data])
  const server = Object.entries(serverEvents(facts)).map(([event, doc]) => [`\`${event}\``, doc.data, doc.when ?? ''])
  const errors = Object.entries(errorCodes).map(([code, meaning]) => [`\`${code}\``, meaning])
  return `
## Recording over WebSocket: \`GET /ws\`

**Connect** with \`Authorization: Bearer <accessToken>\`, or \`?access_token=<accessToken>\` when the phone's
WebSocket API cannot set headers (accepted on /ws only). Refusals come before the upgrade, as HTTP: 401 no or bad
token, 403 an admin's token (admins do not record), 429 more than ${facts.maxConnectionsPerUser} sockets for this user,
503 the instance is full or shutting down.

**Frames** are JSON text, both ways: \`{"event": string, "data": object}\`. Largest frame: ${facts.maxPayloadBytes} bytes.
A phone that offers the subprotocol \`${BINARY_BATCH_SUBPROTOCOL}\` at the upgrade may send write_sensor_readings_batch as one
CBOR map in a binary frame, its readings as RFC 8746 typed arrays (docs/protocol.md, "Binary batches"); answers stay JSON.
The server pings every ${facts.pingIntervalMs / 1000} s and drops a phone that misses a pong.

### Client to server

${table('| event | data |', client)}

A **reading** is \`{"timestamp", "sensor", "xAxis", "yAxis", "zAxis"}\`: \`timestamp\` an ISO-8601 string with an offset
or epoch milliseconds (fractions allowed), not before 2000-01-01 nor more than a day ahead of the server clock;
\`sensor\` one of \`Accelerometer\`, \`Gyroscope\`, \`Magnetometer\`; the axes finite numbers.

### Server to client

${table('| event | data | when |', server)}

Codes of the \`error\` event:

${table('| code | meaning |', errors)}

### Close codes

${table('| code | when |', [
    ['1001', 'the server is shutting down, after answering every batch it had received: reconnect and resume'],
    ['1008', `no session created within ${facts.createSessionTimeoutMs / 1000} s, or the phone is not reading its socket`],
    ['1009', `a frame over ${facts.maxPayloadBytes} bytes`]
  ])}

### Rules

- A batch is all or nothing: a rejected batch writes no reading.
- \`batch_id\` is 0 for a session's first batch, then +1 per batch; holes are lost batches. A batch resent with an
  already written \`batch_id\` is acknowledged again with the unchanged total and not written twice: a phone that lost
  an ack simply resends. Resent with other readings, it is answered \`batch_conflict\` and not stored.
- Answers come in the order the frames were sent. A phone may send up to ${facts.maxInflightBatches} batches ahead of
  their acks before the server stops reading its socket.
- A session ends ${facts.sessionTtlSeconds} s after creation whatever the phone does; a connected phone receives
  \`session_destroyed\` with \`reason: "expired"\`.
- \`create_session\` while the user has an active session answers \`session_already_exist\`; a reconnected phone that
  writes or destroys without \`create_session\` continues its active session.
- \`integrity\` is \`ok\` when \`totalSensorReadingsSent\` equals what was written, \`mismatch\` when not, \`unreported\`
  when the phone sent no count.
`.trim()
}

/** The OpenAPI path entry for `GET /ws`, so the upgrade appears among the operations. */
export function wsPathItem () {
  const security: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { accessTokenQuery: [] }]
  return {
    get: {
      tags: ['websocket'],
      summary: 'Recording WebSocket (HTTP upgrade)',
      description: 'Upgrade to a WebSocket to create a session and stream sensor readings. The events and rules are described at the top of this page, under "Recording over WebSocket".',
      operationId: 'recordingWebSocket',
      security,
      parameters: [{
        name: 'access_token',
        in: 'query',
        required: false,
        description: 'The access token, for phones whose WebSocket API cannot set the Authorization header. Accepted on /ws only.',
        schema: { type: 'string' as const }
      }],
      responses: {
        101: { description: 'Switching Protocols: the WebSocket is open' },
        401: { description: 'No valid access token' },
        403: { description: 'The token belongs to an admin (admins do not record)' },
        429: { description: 'The user already has WS_MAX_CONNECTIONS_PER_USER recording sockets on this instance' },
        503: { description: 'The instance holds its maximum of recording sockets, or is shutting down' }
      }
    }
  }
}
