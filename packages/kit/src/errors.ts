/** An error that maps to an HTTP response: status, a message, and extra JSON fields. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export const badRequest = (message: string, details?: Record<string, unknown>) => new HttpError(400, message, details);
export const notFound = (message: string, details?: Record<string, unknown>) => new HttpError(404, message, details);
export const unprocessable = (message: string, details?: Record<string, unknown>) => new HttpError(422, message, details);
