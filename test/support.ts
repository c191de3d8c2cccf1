/**
 * Helpers shared by the services' route tests (services/<name>/test/*.test.ts). Not a test
 * file itself: vitest collects only *.test.ts.
 */
import { createServer } from 'node:net';
import { type ServiceDefinition, type Started, startService, type z } from '@bfl/kit';
import { afterAll, beforeAll } from 'vitest';

// biome-ignore lint/suspicious/noExplicitAny: JSON answers are checked field by field in the tests
export type Json = any;

export interface Reply {
  status: number;
  body: Json;
  headers: Headers;
}

/** One HTTP request to `base`; an object body is sent as JSON, a string body as it is. */
export async function request(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const init: RequestInit = { method, headers };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    init.headers = { 'content-type': 'application/json', ...headers };
  }
  const response = await fetch(`${base}${path}`, init);
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers };
}

export type Http = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<Reply>;

/** `request` bound to one base URL; a function is read at each request (for a service started later). */
export function client(base: string | (() => string)): Http {
  return (method, path, body, headers) => request(typeof base === 'string' ? base : base(), method, path, body, headers);
}

/**
 * A port nobody listens on right now, for a dependency that is down. A service under test
 * needs none of these: startService listens on an ephemeral port (PORT=0) by default.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** No simulated latency, no logs. */
export const quiet = { LATENCY_SCALE: '0', LOG_LEVEL: 'silent' };
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://lab:lab@localhost:5432/lab';
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://localhost:6379';

type Env = Record<string, string | undefined>;

export interface Served {
  /** The service's base URL, from this block's beforeAll on. */
  readonly url: string;
  /** `request` against the running service. */
  readonly http: Http;
}

/**
 * Starts `definition` in this process (quiet, on an ephemeral port) before the tests of the
 * enclosing block and closes it after them. `env` is laid over `quiet`; a function is called in
 * the beforeAll, for values known only then (another service's URL, a closed port).
 */
export function serve<S extends z.ZodRawShape>(definition: ServiceDefinition<S>, env: Env | (() => Env | Promise<Env>) = {}): Served {
  let started: Started | undefined;
  beforeAll(async () => {
    started = await startService(definition, { ...quiet, ...(typeof env === 'function' ? await env() : env) });
  });
  afterAll(async () => {
    await started?.close();
  });
  const url = () => {
    if (!started) throw new Error(`${definition.name} is not running`);
    return started.url;
  };
  return {
    get url() {
      return url();
    },
    http: client(url),
  };
}

/** An error message's first line, at most 400 characters (an assertion's message can carry a whole log). */
export const firstLine = (message: string | undefined): string => (message ?? 'no error message').split('\n')[0]!.slice(0, 400);

/**
 * The compressed story through a load generator's control API (a Compose stack's
 * published port, a cluster's port-forward): started at `rateScale`, polled until it has
 * reported (at most 240 s), each minute and each expectation printed (`hostTimed` ones as
 * printed, not asserted). Returns the report and how long the story took.
 */
export async function storyThroughControl(
  control: string,
  rateScale: number,
  hostTimed: Set<string>,
  log: (line: string) => void,
): Promise<{ report: Json; ms: number }> {
  const started = Date.now();
  const start = await fetch(`${control}/scenario/start`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ scenario: 'black-friday', minute: '5s', rateScale }),
  });
  const startText = await start.text();
  if (start.status >= 300) throw new Error(`POST ${control}/scenario/start answered ${start.status}: ${startText}`);
  let status: Json;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    status = await (await fetch(`${control}/scenario/status`)).json();
    if (status.state !== 'running' && status.state !== 'stopping' && status.lastReport) break;
    if (Date.now() - started > 240_000) throw new Error(`the story did not finish in 240 s: ${JSON.stringify(status).slice(0, 500)}`);
  }
  const ms = Date.now() - started;
  const report = status.lastReport;
  for (const m of report.minutes as Json[]) {
    const row = (cls: 'baseline' | 'demo') => {
      const t = m.traffic[cls];
      return `${cls} ${t.achievedRps.toFixed(2)}/${t.targetRps.toFixed(2)} rps ${(t.errorRate * 100).toFixed(0)}% p95 ${t.p95Ms.toFixed(0)} ms`;
    };
    log(`story minute ${m.minute}: ${row('baseline')}; ${row('demo')}`);
  }
  for (const e of report.expectations as Json[])
    log(`story ${hostTimed.has(e.name) ? 'host-timed (not asserted)' : 'expectation'}: ${e.ok ? 'PASS' : 'MISS'} ${e.name}: ${e.actual}`);
  log(`story: ok=${report.ok} in ${(ms / 1000).toFixed(1)} s`);
  return { report, ms };
}
