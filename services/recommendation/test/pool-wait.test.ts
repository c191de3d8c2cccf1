/**
 * The wait for a pool connection is recorded once on the `pg.pool.acquire` span and once
 * on the request's server span: inside startActiveSpan the active span is the acquire
 * span itself, so the server span is handed in (before, both writes went to the acquire
 * span and the server span had no wait time).
 */

import { context, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import knex, { type Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASE_URL } from '../../../test/support.js';
import { recommendWithinDeadline } from '../src/app.js';

const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
let db: Knex;

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
  db = knex({ client: 'pg', connection: DATABASE_URL, pool: { min: 0, max: 1 } });
});

afterAll(async () => {
  await db?.destroy();
  await provider.shutdown();
  trace.disable();
  context.disable();
});

describe('recommendation: the pool wait time', () => {
  it('goes on the acquire span and on the server span, not twice on the acquire span', async () => {
    const tracer = trace.getTracer('test');
    const server = tracer.startSpan('POST /recommend', { kind: SpanKind.SERVER });
    // As in the service: a route span is active when the handler calls in.
    await tracer.startActiveSpan('router - /recommend', async (route) => {
      await recommendWithinDeadline(db, 'books', 3, 0, 0, server);
      route.end();
    });
    server.end();
    const spans = exporter.getFinishedSpans();
    const byName = (name: string) => spans.find((s) => s.name === name);
    const wait = byName('pg.pool.acquire')?.attributes['db.client.connection.wait_time'];
    expect(typeof wait).toBe('number');
    expect(byName('POST /recommend')?.attributes['db.client.connection.wait_time']).toBe(wait);
    expect(byName('router - /recommend')?.attributes['db.client.connection.wait_time']).toBeUndefined();
  });
});
