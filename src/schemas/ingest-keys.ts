import { z } from 'zod'
import { storableText } from './common.js'

/** How many ingest keys one user may hold at once: enough for every phone a tester has, not a store of secrets. */
export const MAX_INGEST_KEYS_PER_USER = 10

/** Where a push client sends messages with a key: Sensor Logger's "Push URL" is this path on the service's origin. */
export const sensorLoggerPushPath = (key: string) => `/ingest/sensor-logger/${key}`

export const createIngestKeyBody = z.object({
  label: storableText().trim().min(1).max(100).optional().describe('A name for the phone or app the key is for')
}).strict()

export const ingestKey = z.object({
  id: z.number().int(),
  label: z.string().nullable(),
  createdAt: z.string().describe('ISO-8601'),
  lastUsedAt: z.string().nullable().describe('ISO-8601; updated at most once a minute; null until first used')
})
export type IngestKeyView = z.infer<typeof ingestKey>

export const mintedIngestKey = ingestKey.omit({ lastUsedAt: true }).extend({
  key: z.string().describe('The secret: shown this once, stored only as a hash'),
  pushUrl: z.string().describe('The path to paste after the service\'s origin into Sensor Logger\'s HTTP push URL')
})

export const ingestKeyList = z.object({ items: z.array(ingestKey) })

export const ingestKeyIdParam = z.object({ keyId: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER) })
export const userIngestKeyParams = z.object({
  id: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  keyId: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER)
})

export const revokedIngestKey = z.object({ id: z.number().int(), revoked: z.literal(true) })
