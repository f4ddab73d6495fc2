import { h } from './dom.js'
import type { Session } from './types.js'

const PROBLEMS: Record<string, string> = {
  integrity_mismatch: 'readings missing',
  lost_batches: 'lost batches',
  missing_sensor: 'missing sensor',
  gaps: 'gaps',
  rate_below_intended: 'rate below intended',
  conflicting_resends: 'conflicting resends'
}

export const problemText = (problem: string) => PROBLEMS[problem] ?? problem.replaceAll('_', ' ')

/** The completeness verdict as a badge: recording, pending, complete or incomplete. */
export function verdictBadge (session: Session): HTMLElement {
  if (!session.destroyedAt) return h('span', { class: 'badge live' }, 'recording')
  if (!session.report) return h('span', { class: 'badge' }, 'pending')
  return session.report.complete
    ? h('span', { class: 'badge good' }, 'complete')
    : h('span', { class: 'badge bad' }, 'incomplete')
}
