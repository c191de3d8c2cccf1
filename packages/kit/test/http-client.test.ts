/**
 * ServiceClient against real HTTP servers on loopback: what a caller sees when the
 * downstream answers, answers an error, is too slow, cuts its answer off, or is not there.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEADLINE_HEADER, DownstreamError, ServiceClient } from '../src/index.js';

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

let server: Server;
let base: string;
let handler: Handler = (_req, _body, res) => res.end();
const seen: { method?: string; url?: string; headers?: IncomingMessage['headers']; body?: string } = {};

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => {
      Object.assign(seen, { method: req.method, url: req.url, headers: req.headers, body });
      handler(req, body, res);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const json = (res: ServerResponse, status: number, body: unknown) =>
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

async function failure(call: Promise<unknown>): Promise<DownstreamError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DownstreamError);
  return error as DownstreamError;
}

describe('ServiceClient', () => {
  it('sends JSON with the query, the headers and a deadline, and parses the JSON answer', async () => {
    handler = (_req, body, res) => json(res, 200, { echo: JSON.parse(body) });
    const client = new ServiceClient('cart', base, 1_500);
    const before = Date.now();
    const answer = await client.post<{ echo: unknown }>(
      '/cart/c1/items',
      { product_id: 7 },
      { query: { a: 'x y', skip: undefined }, headers: { 'Idempotency-Key': 'k1' } },
    );
    expect(answer).toEqual({ echo: { product_id: 7 } });
    expect(seen.method).toBe('POST');
    expect(seen.url).toBe('/cart/c1/items?a=x+y');
    expect(seen.headers?.['content-type']).toBe('application/json');
    expect(seen.headers?.['idempotency-key']).toBe('k1');
    const deadline = Number(seen.headers?.[DEADLINE_HEADER]);
    expect(deadline).toBeGreaterThanOrEqual(before + 1_500);
    expect(deadline).toBeLessThanOrEqual(Date.now() + 1_500);
  });

  it('reuses its connections (keep-alive) across calls', async () => {
    handler = (_req, _body, res) => json(res, 200, { ok: true });
    let opened = 0;
    const count = () => opened++;
    server.on('connection', count);
    const client = new ServiceClient('cart', base);
    for (let i = 0; i < 5; i++) await client.get('/x');
    server.off('connection', count);
    expect(opened).toBeLessThanOrEqual(1);
  });

  it('turns an error status into a status failure that keeps the answer and its reason', async () => {
    handler = (_req, _body, res) => json(res, 503, { error: 'pool exhausted', reason: 'pool-exhausted' });
    const error = await failure(new ServiceClient('checkout', base).post('/orders/create', {}));
    expect(error).toMatchObject({ service: 'checkout', kind: 'status', status: 503, reason: 'pool-exhausted' });
    expect(error.message).toBe('checkout answered 503: pool exhausted');
  });

  it('keeps a non-JSON error answer readable', async () => {
    handler = (_req, _body, res) => res.writeHead(502).end('<html>bad gateway</html>');
    const error = await failure(new ServiceClient('ad', base).get('/ads'));
    expect(error).toMatchObject({ kind: 'status', status: 502, body: { error: '<html>bad gateway</html>' } });
  });

  it('gives up after its timeout with a timeout failure', async () => {
    handler = (_req, _body, res) => setTimeout(() => json(res, 200, {}), 1_000);
    const started = Date.now();
    const error = await failure(new ServiceClient('recommendation', base, 5_000).get('/slow', { timeoutMs: 150 }));
    expect(error).toMatchObject({ kind: 'timeout', service: 'recommendation' });
    expect(error.message).toBe('recommendation did not answer within 150 ms');
    expect(Date.now() - started).toBeLessThan(900);
  });

  it('counts an answer cut off mid-body as the timeout it is', async () => {
    handler = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"partial":');
    };
    const error = await failure(new ServiceClient('catalog', base).get('/cut', { timeoutMs: 200 }));
    expect(error.kind).toBe('timeout');
    expect(error.message).toMatch(/^catalog response was cut off/);
  });

  it('reports an unreachable service as unavailable, naming the cause', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = await failure(new ServiceClient('payment', `http://127.0.0.1:${port}`).get('/x'));
    expect(error.kind).toBe('unavailable');
    expect(error.message).toMatch(/^payment is unreachable: .*ECONNREFUSED/);
  });
});
