import { untraced } from '@bfl/telemetry';
import { bodyParser } from '@koa/bodyparser';
import { Router } from '@koa/router';
import { type Attributes, type Span, SpanStatusCode, trace } from '@opentelemetry/api';
import Koa from 'koa';
import { DEADLINE_HEADER, parseDeadline, withDeadline } from './deadline.js';
import { HttpError } from './errors.js';
import { DownstreamError } from './http-client.js';
import type { Logger } from './log.js';

export type ReadyCheck = () => Promise<unknown>;

export interface AppOptions {
  /** service.name, as in DESIGN.md */
  name: string;
  logger: Logger;
  /** Named dependency checks for GET /ready (Postgres, Redis, downstreams). */
  ready?: Record<string, ReadyCheck>;
  /** Registers the service's routes. */
  routes: (router: Router) => void;
  /** Largest JSON body accepted (bytes or a size like '64kb'). */
  bodyLimit?: string;
  /** How long each readiness check may take. */
  readyTimeoutMs?: number;
  /** Adds fields to every error body this service answers with (e.g. the demo minute). */
  decorateError?: (body: ErrorBody) => ErrorBody;
}

export type ErrorBody = { error: string } & Record<string, unknown>;

/** Maps any thrown value to a status and a JSON body; never leaks internals on a 500. */
export function errorResponse(error: unknown): { status: number; body: ErrorBody } {
  if (error instanceof HttpError) {
    return { status: error.status, body: { error: error.message, ...error.details } };
  }
  if (error instanceof DownstreamError) {
    if (error.kind === 'timeout') {
      return { status: 504, body: { error: error.message, reason: `${error.service}-timeout`, service: error.service } };
    }
    if (error.kind === 'unavailable') {
      return { status: 503, body: { error: error.message, reason: `${error.service}-unavailable`, service: error.service } };
    }
    // A downstream 503 with a reason (pool-exhausted, ...) passes on as it is, and so
    // does a downstream 504: the deadline ran out further down.
    if (error.status === 503 && error.reason) {
      return { status: 503, body: { error: error.message, reason: error.reason, service: error.service } };
    }
    if (error.status === 504) {
      return { status: 504, body: { error: error.message, reason: error.reason ?? `${error.service}-timeout`, service: error.service } };
    }
    return { status: 502, body: { error: error.message, reason: 'downstream-error', service: error.service } };
  }
  const unavailable = unavailableDependency(error);
  if (unavailable) {
    return {
      status: 503,
      body: { error: `${unavailable} is unavailable: ${(error as Error).message}`, reason: `${unavailable}-unavailable` },
    };
  }
  if (isPoolTimeout(error)) {
    return { status: 503, body: { error: 'database pool exhausted: no connection free in time', reason: 'pool-exhausted' } };
  }
  if (isStatementTimeout(error)) {
    return {
      status: 503,
      body: { error: 'the database cancelled a statement that ran past its statement_timeout', reason: 'statement-timeout' },
    };
  }
  const status = (error as { status?: unknown })?.status;
  // Koa, the body parser and the router throw client errors that carry their status.
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return { status, body: { error: describeClientError(error as Error & { type?: string }, status) } };
  }
  return { status: 500, body: { error: 'internal error' } };
}

function describeClientError(error: Error & { type?: string; limit?: number }, status: number): string {
  if (status === 413) return `request body too large (limit ${error.limit ?? 'exceeded'} bytes)`;
  if (error.type === 'entity.parse.failed' || error instanceof SyntaxError) {
    return `malformed JSON body: ${error.message}`;
  }
  return error.message;
}

/**
 * A body the parser could not read. Its own errors carry their 4xx status (malformed JSON,
 * too large, an unknown charset); a body that does not decompress as its Content-Encoding
 * says (gzip, deflate, br) comes straight from zlib, without one, and is the client's fault too.
 */
function unreadableBody(error: Error & { status?: unknown }): Error {
  const status = error.status;
  if (typeof status === 'number' && status >= 400 && status < 500) return error;
  return new HttpError(400, `request body could not be read: ${error.message}`);
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'EPIPE']);

/**
 * pg's messages for a connection that broke under a query. knex puts the statement in
 * front ("ROLLBACK - Connection terminated unexpectedly", "insert into ... - ..."), so they
 * are matched at the start or after knex's " - ".
 */
const PG_CONNECTION_LOST = /(?:^|\s-\s)(?:Connection terminated|Connection ended unexpectedly|Client has encountered a connection error)/;

/**
 * Which datastore a connection failure came from: ioredis (retries used up, connection
 * closed) or PostgreSQL (a refused or broken connection, or a server shutting down).
 */
export function unavailableDependency(error: unknown): 'redis' | 'postgres' | undefined {
  const e = error as { name?: string; message?: string; code?: string } | undefined;
  if (!e || typeof e !== 'object') return undefined;
  if (e.name === 'MaxRetriesPerRequestError' || /^Connection is closed|Stream isn't writeable|^Command timed out/.test(e.message ?? ''))
    return 'redis';
  const pgShutdown = typeof e.code === 'string' && (e.code.startsWith('08') || e.code === '57P01' || e.code === '57P03');
  if (pgShutdown || (e.code && CONNECTION_CODES.has(e.code)) || PG_CONNECTION_LOST.test(e.message ?? '')) return 'postgres';
  return undefined;
}

/** Adds business attributes to the service's server span of the current request. */
export function annotate(ctx: { state: { span?: Span } }, attributes: Attributes): void {
  ctx.state.span?.setAttributes(attributes);
}

/** PostgreSQL's query_canceled (57014) for a statement that ran past statement_timeout. */
function isStatementTimeout(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | undefined;
  return e?.code === '57014' && /statement timeout/.test(String(e.message));
}

/** knex/tarn's "Timeout acquiring a connection. The pool is probably full." */
export function isPoolTimeout(error: unknown): boolean {
  return (error as Error | undefined)?.name === 'KnexTimeoutError';
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The Koa app every service is built from: JSON errors, a size-limited JSON body
 * parser, access logs, /health and /ready, then the service's own routes.
 */
export function createApp(options: AppOptions): Koa {
  const { name, logger } = options;
  const app = new Koa();
  app.proxy = true;
  // Errors are answered and logged by the middleware below; Koa's default printer stays quiet.
  app.silent = true;

  app.use(async (ctx, next) => {
    const started = performance.now();
    // The service's server span (Koa's middleware spans are off), for annotate().
    ctx.state.span = trace.getActiveSpan();
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        ctx.status = 404;
        ctx.body = { error: `no route for ${ctx.method} ${ctx.path}` };
      }
    } catch (error) {
      const response = errorResponse(error);
      const status = response.status;
      const body = options.decorateError ? options.decorateError(response.body) : response.body;
      ctx.status = status;
      ctx.body = body;
      const span = trace.getActiveSpan();
      if (status >= 500) {
        span?.recordException(error as Error);
        span?.setStatus({ code: SpanStatusCode.ERROR, message: body.error });
        if (typeof body.reason === 'string') span?.setAttribute('failure.reason', body.reason);
      }
      const level = status >= 500 ? (status === 500 ? 'error' : 'warn') : 'info';
      logger[level]({ err: status === 500 ? error : undefined, status, reason: body.reason, path: ctx.path }, body.error);
    } finally {
      if (ctx.path !== '/health' && ctx.path !== '/ready') {
        logger.debug({ method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(performance.now() - started) }, 'request');
      }
    }
  });

  // The caller's deadline (if any) travels with everything this request does.
  app.use((ctx, next) => withDeadline(parseDeadline(ctx.get(DEADLINE_HEADER) || undefined), next));

  const limit = options.bodyLimit ?? '64kb';
  app.use(async (ctx, next) => {
    const hasBody = Number(ctx.get('content-length') || 0) > 0 || ctx.get('transfer-encoding') !== '';
    if (hasBody && ['POST', 'PUT', 'PATCH'].includes(ctx.method) && !ctx.is('json')) {
      throw new HttpError(415, 'request body must be JSON (content-type: application/json)');
    }
    await next();
  });
  app.use(
    bodyParser({
      enableTypes: ['json'],
      jsonLimit: limit,
      jsonStrict: true,
      encoding: 'utf-8',
      onError: (error) => {
        throw unreadableBody(error);
      },
    }),
  );

  const router = new Router();
  router.get('/health', (ctx) => {
    ctx.body = { status: 'ok', service: name, uptime_s: Math.round(process.uptime()) };
  });
  router.get('/ready', async (ctx) => {
    const checks: Record<string, string> = {};
    const timeoutMs = options.readyTimeoutMs ?? 2_000;
    await Promise.all(
      Object.entries(options.ready ?? {}).map(async ([dependency, check]) => {
        try {
          // Probes are not traffic: their calls to Postgres, Redis and downstreams make no spans.
          await untraced(() => withTimeout(check(), timeoutMs, dependency));
          checks[dependency] = 'ok';
        } catch (error) {
          checks[dependency] = (error as Error).message || String(error);
        }
      }),
    );
    const ready = Object.values(checks).every((value) => value === 'ok');
    ctx.status = ready ? 200 : 503;
    ctx.body = ready ? { status: 'ready', service: name, checks } : { error: 'not ready', service: name, checks };
  });
  options.routes(router);
  app.use(router.routes());
  app.use(router.allowedMethods({ throw: true }));
  return app;
}
