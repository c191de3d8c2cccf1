import type { z } from 'zod';
import { HttpError } from './errors.js';

/**
 * Validates input against a schema. Bad input becomes a 422 whose body says which
 * field is wrong and why; it never reaches the handler.
 */
export function validate<T extends z.ZodType>(schema: T, input: unknown, where = 'body'): z.infer<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({
    field: issue.path.length ? issue.path.join('.') : where,
    message: issue.message,
  }));
  const first = issues[0];
  const message = first ? `invalid ${where}: ${first.field}: ${first.message}` : `invalid ${where}`;
  throw new HttpError(422, message, { issues });
}

/** Validates the parsed JSON body of a request (see createApp's body parser). */
export function validateBody<T extends z.ZodType>(schema: T, ctx: { request: object }): z.infer<T> {
  return validate(schema, (ctx.request as { body?: unknown }).body ?? {}, 'body');
}
