import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Deadline propagation: a caller tells how long it will wait (`x-request-deadline`, epoch
 * ms); every service passes the rest of that budget on to its own calls, and may skip
 * work whose caller has already given up.
 */
export const DEADLINE_HEADER = 'x-request-deadline';

const storage = new AsyncLocalStorage<{ deadline?: number }>();

/** Runs `fn` with the deadline of the request being served. */
export function withDeadline<T>(deadline: number | undefined, fn: () => T): T {
  return storage.run({ deadline }, fn);
}

/** The current request's deadline (epoch ms), if its caller set one. */
export function currentDeadline(): number | undefined {
  return storage.getStore()?.deadline;
}

/** Parses the header; ignores anything that is not a plausible epoch-ms time. */
export function parseDeadline(header: string | undefined): number | undefined {
  if (!header || !/^\d{13}$/.test(header)) return undefined;
  return Number(header);
}

/** Milliseconds left until the current deadline (Infinity when none). */
export function remainingBudget(now = Date.now()): number {
  const deadline = currentDeadline();
  return deadline === undefined ? Number.POSITIVE_INFINITY : deadline - now;
}
