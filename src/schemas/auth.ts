import { z } from 'zod'
import { user } from './users.js'

export const loginBody = z.object({
  email: z.email().max(320),
  publicKey: z.string().trim().min(1).max(512)
}).strict()

export const tokenResponse = z.object({
  accessToken: z.string().describe('Send as "Authorization: Bearer <accessToken>"'),
  expiresAt: z.string().describe('ISO-8601'),
  user
})
