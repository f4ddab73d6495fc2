import { formatMicros } from '../schemas/timestamps.js'
import type { LabelRecorder } from '../labels/session-labels.js'
import { labelEventData } from '../schemas/labels.js'
import { validationIssues, type ServerFrame } from '../schemas/ws-events.js'

/**
 * The answer to a phone's `label` event: its data checked, the session it
 * applies to found (the socket's, or the user's active one after a
 * reconnect), and the label handed to the labels module, whose rules are
 * the HTTP routes' too. The connection only runs this in its command order.
 */
export async function answerLabelEvent (
  data: Record<string, unknown>, userId: number, labels: LabelRecorder | undefined, sessionId: () => Promise<number | undefined>
): Promise<ServerFrame[]> {
  if (!labels) return [{ event: 'error', data: { code: 'unknown_event', message: 'This server does not take labels' } }]
  const parsed = labelEventData.safeParse(data)
  if (!parsed.success) {
    return [{
      event: 'error',
      data: { code: 'invalid_event_data', message: 'label data is {"startTime", "endTime"?, "label", "note"?}', issues: validationIssues(parsed.error) }
    }]
  }
  const session = await sessionId()
  if (session === undefined) return [{ event: 'session_not_found', data: {} }]
  const { startTime, endTime, label, note } = parsed.data
  const result = await labels.add(session, userId, { startUs: startTime, endUs: endTime ?? null, label, note: note ?? null })
  switch (result.status) {
    case 'session_not_found':
      return [{ event: 'session_not_found', data: {} }]
    case 'refused':
      return [{ event: 'label_refused', data: { sessionId: session, code: result.code, message: result.message, labelId: result.labelId } }]
    case 'recorded':
    case 'duplicate': {
      const stored = result.label
      return [{
        event: 'label_recorded',
        data: {
          sessionId: session,
          labelId: stored.id,
          startTime: formatMicros(stored.startUs),
          endTime: stored.endUs === null ? null : formatMicros(stored.endUs),
          label: stored.label,
          duplicate: result.status === 'duplicate',
          closedLabelId: result.status === 'recorded' ? result.closedLabelId : null
        }
      }]
    }
  }
}
