import { z } from 'zod'
import { publicKeyProblem } from '../keys/public-key.js'
import { page, storableText } from './common.js'

export const ROLES = ['ADMIN', 'BETATESTER'] as const
export const role = z.enum(ROLES)
export type Role = z.infer<typeof role>

export const user = z.object({
  id: z.number().int(),
  name: z.string(),
  email: z.string(),
  publicKey: z.string(),
  role,
  createdAt: z.string().describe('ISO-8601')
})
export type User = z.infer<typeof user>

export const createUserBody = z.object({
  name: storableText().trim().min(1).max(200),
  email: z.email().max(320),
  publicKey: storableText().trim().min(1).max(512)
    .superRefine((key, ctx) => {
      const problem = publicKeyProblem(key)
      if (problem) ctx.addIssue({ code: 'custom', message: problem })
    })
    .describe('Stored normalised: Ethereum address lowercase, Ed25519 key (hex, padded base64 or ed25519:<base58>) as ed25519:<base58>, anything else as given'),
  role: role.default('BETATESTER')
}).strict()
export type CreateUserInput = z.infer<typeof createUserBody>

export const userPage = page(user)

export const deleteUserResult = z.object({
  deleted: z.object({
    users: z.number().int(),
    sessions: z.number().int(),
    readings: z.number().int(),
    accessTokens: z.number().int()
  })
})
