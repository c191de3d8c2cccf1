import { z } from 'zod';
import { parseProfiles } from './latency.js';

/** Raised when an environment variable is missing or malformed; names the variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

/** Environment helpers: every value arrives as a string. */
export const env = {
  /** 0 asks the OS for a free port (tests). */
  port: (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback),
  int: (fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max).default(fallback),
  number: (fallback: number, min = 0) => z.coerce.number().min(min).default(fallback),
  url: (fallback: string) => z.url().default(fallback),
  string: (fallback: string) => z.string().min(1).default(fallback),
  enum: <T extends readonly [string, ...string[]]>(values: T, fallback: T[number]) => z.enum(values).default(fallback as never),
};

/** Settings every service shares. */
export const commonEnv = {
  LOG_LEVEL: env.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
  /** Multiplies every simulated delay; 0 turns the latency model off. */
  LATENCY_SCALE: env.number(1),
  /** Per-step overrides of the latency model, e.g. `convert=15/40,ads=30/90` (median/p95 ms). */
  LATENCY_PROFILES: z
    .string()
    .default('')
    .transform((spec, ctx) => {
      try {
        return parseProfiles(spec);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    }),
  /** How long SIGTERM waits for in-flight requests before closing connections. */
  SHUTDOWN_GRACE_MS: env.int(10_000, 0),
};

/**
 * Reads and validates configuration from the environment. Throws ConfigError naming
 * each bad variable and what was wrong with it.
 */
export function loadConfig<S extends z.ZodRawShape>(shape: S, source: NodeJS.ProcessEnv = process.env): z.infer<z.ZodObject<S>> {
  const schema = z.object(shape);
  const input: Record<string, string | undefined> = {};
  for (const key of Object.keys(shape)) {
    const value = source[key];
    input[key] = value === '' ? undefined : value;
  }
  const result = schema.safeParse(input);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => {
        const name = issue.path.join('.');
        const got = input[name];
        return `${name}=${JSON.stringify(got)}: ${issue.message}`;
      }),
    );
  }
  return result.data;
}
