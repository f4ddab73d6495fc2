/**
 * A domain error with a stable machine-readable code and the HTTP status it
 * maps to. Handlers throw these; the error handler turns them into
 * `{ error, message }` bodies.
 */
export class AppError extends Error {
  constructor (
    readonly statusCode: number,
    readonly code: string,
    message: string,
    options?: { cause?: unknown }
  ) {
    super(message, options)
    this.name = 'AppError'
  }
}

export const badRequest = (message: string) => new AppError(400, 'BAD_REQUEST', message)
export const unauthorized = (message = 'A valid access token is required') => new AppError(401, 'UNAUTHORIZED', message)
export const forbidden = (message = 'Your role does not allow this') => new AppError(403, 'FORBIDDEN', message)
export const notFound = (message: string) => new AppError(404, 'NOT_FOUND', message)
export const conflict = (message: string) => new AppError(409, 'CONFLICT', message)
