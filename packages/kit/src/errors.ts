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

/**
 * Why a call failed, in one line: the message of the error's `cause` when it has one (a
 * failed fetch says only "fetch failed"; undici puts the reason, such as `connect
 * ECONNREFUSED 127.0.0.1:1`, in its cause), else the error's own message.
 */
export function errorCause(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause;
  if (cause instanceof Error && cause.message) return cause.message;
  if (typeof cause === 'object' && cause !== null && typeof (cause as { code?: unknown }).code === 'string')
    return (cause as { code: string }).code;
  return error.message;
}
