/**
 * Topics of the MQTT transport: `<prefix>/<ingest key>`. The key is a
 * secret, so a topic is never logged as is.
 */

/** The ingest key a topic carries: its last level. */
export function keyOfTopic (topic: string): string {
  return topic.slice(topic.lastIndexOf('/') + 1)
}

// "mik_<id>_<secret>": the id is a row number, not a secret, and tells an operator which key it was.
const KEY_ID = /^mik_([1-9]\d{0,15})_/

/** The topic with its key level replaced, safe to log: `motion-ingest/mik_12_…`, or `motion-ingest/…` for anything else. */
export function redactTopic (topic: string): string {
  const cut = topic.lastIndexOf('/') + 1
  const id = KEY_ID.exec(topic.slice(cut))?.[1]
  return `${topic.slice(0, cut)}${id === undefined ? '…' : `mik_${id}_…`}`
}

/**
 * What the service subscribes to: with a group, the MQTT 5 shared
 * subscription `$share/<group>/<filter>`, so that of several instances
 * subscribed under one group only one receives each message.
 */
export function subscriptionFilter (filter: string, shareGroup: string | undefined): string {
  return shareGroup === undefined ? filter : `$share/${shareGroup}/${filter}`
}
