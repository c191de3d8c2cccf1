import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp, unavailableDependency } from '../src/app.js';
import { HttpError } from '../src/errors.js';
import { DownstreamError, ServiceClient } from '../src/http-client.js';
import { listen, type Running } from '../src/server.js';
import { validate, validateBody } from '../src/validate.js';

const logger = pino({ level: 'silent' });
const Item = z.object({ name: z.string().min(1), quantity: z.number().int().min(1) });

let running: Running;
let base: string;
let stuck: Server;
let stuckUrl: string;

beforeAll(async () => {
  // A server that accepts connections and never answers.
  stuck = createServer(() => {});
  stuck.listen(0, '127.0.0.1');
  await once(stuck, 'listening');
  stuckUrl = `http://127.0.0.1:${(stuck.address() as { port: number }).port}`;

  const app = createApp({
    name: 'test',
    logger,
    ready: { fine: async () => 'ok', broken: async () => Promise.reject(new Error('connection refused')) },
    readyTimeoutMs: 200,
    routes(router) {
      router.post('/items', (ctx) => {
        const item = validateBody(Item, ctx);
        ctx.status = 201;
        ctx.body = item;
      });
      router.get('/items/:id', (ctx) => {
        const id = validate(z.coerce.number().int().positive(), ctx.params.id, 'item id');
        ctx.body = { id };
      });
      router.get('/boom', () => {
        throw new Error('secret database password in a stack trace');
      });
      router.get('/teapot', () => {
        throw new HttpError(418, 'I am a teapot', { reason: 'teapot' });
      });
      router.get('/downstream-timeout', () => {
        throw new DownstreamError('cart', 'timeout', 'cart did not answer within 5 ms');
      });
      router.get('/downstream-pool', () => {
        throw new DownstreamError('checkout', 'status', 'checkout answered 503', 503, { reason: 'pool-exhausted' });
      });
      router.get('/pool', () => {
        throw Object.assign(new Error('Knex: Timeout acquiring a connection. The pool is probably full.'), { name: 'KnexTimeoutError' });
      });
    },
  });
  running = await listen({ name: 'test', port: 0, host: '127.0.0.1', app, logger });
  base = `http://127.0.0.1:${running.port}`;
});

afterAll(async () => {
  await running.close();
  stuck.closeAllConnections();
  stuck.close();
});

const post = (path: string, body: string, contentType = 'application/json') =>
  fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': contentType }, body });

describe('createApp', () => {
  it('serves /health', async () => {
    const response = await fetch(`${base}/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: 'ok', service: 'test' });
  });

  it('answers /ready 503 naming the failing dependency', async () => {
    const response = await fetch(`${base}/ready`);
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({
      error: 'not ready',
      service: 'test',
      checks: { fine: 'ok', broken: 'connection refused' },
    });
  });

  it('accepts valid JSON', async () => {
    const response = await post('/items', JSON.stringify({ name: 'mug', quantity: 2 }));
    expect(response.status).toBe(201);
    expect(await response.json()).toEqual({ name: 'mug', quantity: 2 });
  });

  it.each([
    ['malformed JSON', '{"name": "mug",', 400, /malformed JSON body/],
    ['a JSON string instead of an object', '"mug"', 400, /malformed JSON body|invalid/],
    ['a missing field', JSON.stringify({ name: 'mug' }), 422, /quantity/],
    ['a wrong type', JSON.stringify({ name: 'mug', quantity: 'two' }), 422, /quantity/],
    ['an out-of-range value', JSON.stringify({ name: 'mug', quantity: 0 }), 422, /quantity/],
    ['an oversized body', JSON.stringify({ name: 'x'.repeat(70 * 1024), quantity: 1 }), 413, /too large/],
  ])('rejects %s with a 4xx and a message', async (_, body, status, message) => {
    const response = await post('/items', body);
    expect(response.status).toBe(status);
    const json = (await response.json()) as { error: string };
    expect(json.error).toMatch(message);
  });

  it('lists every validation issue with its field', async () => {
    const response = await post('/items', JSON.stringify({ quantity: 'x' }));
    expect(response.status).toBe(422);
    const json = (await response.json()) as { issues: { field: string }[] };
    expect(json.issues.map((i) => i.field).sort()).toEqual(['name', 'quantity']);
  });

  it('rejects a body that is not JSON with 415', async () => {
    const response = await post('/items', 'name=mug', 'application/x-www-form-urlencoded');
    expect(response.status).toBe(415);
    expect(((await response.json()) as { error: string }).error).toMatch(/must be JSON/);
  });

  it('validates path parameters', async () => {
    expect((await fetch(`${base}/items/7`)).status).toBe(200);
    const response = await fetch(`${base}/items/abc`);
    expect(response.status).toBe(422);
    expect(((await response.json()) as { error: string }).error).toMatch(/item id/);
  });

  it('answers unknown routes 404 and wrong methods 405 in JSON', async () => {
    const missing = await fetch(`${base}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: 'no route for GET /nope' });
    const wrong = await fetch(`${base}/items`, { method: 'PUT' });
    expect(wrong.status).toBe(405);
    expect(await wrong.json()).toHaveProperty('error');
  });

  it('hides internals on a 500', async () => {
    const response = await fetch(`${base}/boom`);
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({ error: 'internal error' });
  });

  it('maps HttpError, downstream failures and pool exhaustion to their statuses', async () => {
    const cases: [string, number, string][] = [
      ['/teapot', 418, 'teapot'],
      ['/downstream-timeout', 504, 'cart-timeout'],
      ['/downstream-pool', 503, 'pool-exhausted'],
      ['/pool', 503, 'pool-exhausted'],
    ];
    for (const [path, status, reason] of cases) {
      const response = await fetch(`${base}${path}`);
      expect(response.status, path).toBe(status);
      expect(((await response.json()) as { reason: string }).reason, path).toBe(reason);
    }
  });
});

describe('ServiceClient', () => {
  it('returns the JSON body', async () => {
    const client = new ServiceClient('test', base);
    expect(await client.post('/items', { name: 'cup', quantity: 1 })).toEqual({ name: 'cup', quantity: 1 });
    expect(await client.get('/items/3', { query: { unused: undefined } })).toEqual({ id: 3 });
  });

  it('raises a status error carrying the downstream body', async () => {
    const client = new ServiceClient('test', base);
    const error = await client.get('/teapot').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DownstreamError);
    expect(error).toMatchObject({ kind: 'status', status: 418, reason: 'teapot', service: 'test' });
  });

  it('times out a call that never answers', async () => {
    const client = new ServiceClient('slow', stuckUrl, 5_000);
    const started = performance.now();
    const error = await client.get('/anything', { timeoutMs: 150 }).catch((e: unknown) => e);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(error).toMatchObject({ kind: 'timeout', service: 'slow' });
    expect((error as Error).message).toMatch(/did not answer within 150 ms/);
  });

  it('reports an unreachable service', async () => {
    const client = new ServiceClient('gone', 'http://127.0.0.1:1');
    const error = await client.get('/x').catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: 'unavailable', service: 'gone' });
  });
});

describe('unavailableDependency', () => {
  it('knows a PostgreSQL connection lost under a query, also with the statement knex puts in front', () => {
    for (const message of [
      'Connection terminated unexpectedly',
      'ROLLBACK - Connection terminated unexpectedly',
      'insert into "orders" ("user_id") values ($1) returning * - Connection terminated unexpectedly',
      'select 1 - Client has encountered a connection error and is not queryable',
    ]) {
      expect(unavailableDependency(new Error(message)), message).toBe('postgres');
    }
    expect(unavailableDependency(new Error('relation "orders" does not exist'))).toBeUndefined();
  });
});
