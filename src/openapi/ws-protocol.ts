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

/**
 * The recording protocol of `GET /ws` in markdown, written from
 * PROTOCOL.md. Fastify cannot describe WebSocket frames, so the OpenAPI
 * document carries it as prose; the numbers are this instance's settings.
 */
export function wsProtocolMarkdown (facts: WsProtocolFacts): string {
  return `
## Recording over WebSocket: \`GET /ws\`

**Connect** with \`Authorization: Bearer <accessToken>\`, or \`?access_token=<accessToken>\` when the phone's
WebSocket API cannot set headers. A beta tester's token is required: no token 401, an admin's token 403
(admins do not record), the instance's socket cap reached 503, more than ${facts.maxConnectionsPerUser}
sockets of one user refused.

**Frames** are JSON text, both ways: \`{"event": string, "data": object}\`. Largest frame: ${facts.maxPayloadBytes} bytes
(larger closes the socket with 1009). A socket that has not created or resumed a session within
${facts.createSessionTimeoutMs / 1000} s is closed. The server pings every ${facts.pingIntervalMs / 1000} s and drops a phone
that does not answer. On shutdown the server finishes and acknowledges batches it has received, then closes with **1001**.

### Client to server

| event | data |
| --- | --- |
| \`create_session\` | \`{}\` or \`{"metadata": {...}}\`: free-form labels (device model and OS, app version, sample rate, activity, where the phone is carried, bike type, terrain, notes) |
| \`write_sensor_readings_batch\` | \`{"batch_id": int >= 0, "sensor_readings": [reading × ${facts.batchSize}]}\` |
| \`destroy_session\` | \`{}\` or \`{"totalSensorReadingsSent": int}\` |

A **reading** is \`{"timestamp", "sensor", "xAxis", "yAxis", "zAxis"}\`: \`timestamp\` an ISO-8601 string with offset
or epoch milliseconds (fractions allowed); \`sensor\` one of \`Accelerometer\`, \`Gyroscope\`, \`Magnetometer\`;
the axes finite numbers.

### Server to client

| event | data | when |
| --- | --- | --- |
| \`session_created\` | \`{sessionId, createdAt, expiresAt}\` | a new session |
| \`session_already_exist\` | \`{sessionId, createdAt}\` | the user already has an active session (also how a phone resumes after a reconnect) |
| \`sensor_readings_batch_written\` | \`{sessionId, batchId, totalSensorReadingsWritten}\` | only after the batch is durably committed |
| \`invalid_sensor_readings_batch_size\` | \`{sessionId, batchId, expected, received}\` | the batch does not hold exactly ${facts.batchSize} readings |
| \`invalid_sensor_reading_schema\` | \`{sessionId, batchId, issues: [{path, message}]}\` | a reading or field is malformed |
| \`session_destroyed\` | \`{sessionId, destroyedAt, reason, totalSensorReadingsWritten, integrity}\` | on request (\`client\`), on expiry (\`expired\`) or by an admin (\`admin\`) |
| \`session_not_found\` | \`{}\` | write or destroy with no active session |

### Rules

- A batch is all or nothing: a rejected batch writes no reading.
- \`batch_id\` is 0 for a session's first batch, then +1 per batch; holes are lost batches. A batch resent with an
  already written \`batch_id\` is acknowledged again with the unchanged total and not written twice: a phone that lost
  an ack simply resends.
- Acks come in the order the batches were sent. A phone may send up to ${facts.maxInflightBatches} batches ahead of their acks.
- A session ends ${facts.sessionTtlSeconds} s after creation whatever the phone does; a connected phone receives
  \`session_destroyed\` with \`reason: "expired"\`.
- \`integrity\` is \`ok\` when \`totalSensorReadingsSent\` equals what was written, \`mismatch\` when not, \`unreported\`
  when the phone sent no count.
- Anything else (not JSON, unknown event, oversized frame) gets an error event or a close code, never touches stored data.
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
        503: { description: 'The instance holds its maximum of recording sockets, or is shutting down' }
      }
    }
  }
}
