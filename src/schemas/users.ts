import { z } from 'zod'

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
  name: z.string().trim().min(1).max(200),
  email: z.email().max(320),
  publicKey: z.string().trim().min(1).max(512),
  role: role.default('BETATESTER')
}).strict()
export type CreateUserInput = z.infer<typeof createUserBody>

export const userPage = z.object({
  items: z.array(user),
  total: z.number().int(),
  take: z.number().int(),
  skip: z.number().int()
})

export const deleteUserResult = z.object({
  deleted: z.object({
    users: z.number().int(),
    sessions: z.number().int(),
    readings: z.number().int(),
    accessTokens: z.number().int()
  })
})
