/**
 * Bad input, property-based: every endpoint of every service, as real processes (startLab),
 * gets generated malformed, oversized, wrongly typed and hostile requests (bodies, query
 * strings, path ids, headers, W3C baggage), one at a time, with the scenario's knobs at
 * their defaults. The property: no 5xx, no process dies, and every 4xx is a JSON body with a
 * message (`{ "error": "..." }`, DESIGN.md). The control API's state-changing endpoints get
 * invalid input only: a valid `POST /scenario/start` would start a scenario.
 *
 * Reproducible: the seed is fixed (BAD_INPUT_SEED overrides it) and printed; a failure
 * prints fast-check's seed and path to replay it. BAD_INPUT_RUNS sets the inputs per endpoint.
 */
import { readFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { createConnection } from 'node:net';
import path from 'node:path';
import { CATEGORIES, CURRENCIES, SERVICE_PORTS, type ServiceName } from '@bfl/contract';
import { type Lab, startLab } from '@bfl/lab';
import { OtlpReceiver } from '@bfl/traces/otlp-receiver';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const SEED = Number(process.env.BAD_INPUT_SEED ?? 20_261_204);
const RUNS = Number(process.env.BAD_INPUT_RUNS ?? 100);
/** Each endpoint must have been sent at least this many inputs. */
const MIN_INPUTS = Math.min(100, RUNS);

const root = path.resolve(__dirname, '..');
// 31010..31019: away from the lab's 8010-8019 and the other tests' ports, below the ephemeral range.
const ports = Object.fromEntries(Object.entries(SERVICE_PORTS).map(([name, port]) => [name, port + 23_000])) as Record<ServiceName, number>;
// A Redis database of its own, emptied first: carts and the scenario's knobs (lab:scenario)
// start the same on every run, and a lab running beside this test cannot turn a knob here.
const REDIS_URL = `${(process.env.REDIS_URL ?? 'redis://localhost:6379').replace(/\/\d*$/, '')}/13`;

// ---------------------------------------------------------------- raw JSON --

/** JSON text spliced into a body as it is (invalid JSON, deep nesting). */
class Raw {
  constructor(readonly text: string) {}
}

/** JSON.stringify that keeps own `__proto__` keys and splices Raw fragments. */
function toJson(value: unknown): string {
  if (value instanceof Raw) return value.text;
  if (Array.isArray(value)) return `[${value.map(toJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}:${toJson(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** An object with exactly these own keys, `__proto__` included (a literal would set the prototype). */
const objectOf = (entries: [string, unknown][]) => Object.fromEntries(entries) as Record<string, unknown>;

// ------------------------------------------------------------ generators --

const POLLUTION_KEYS = ['__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'valueOf', 'then', 'toJSON'];

const nastyStrings = fc.constantFrom(
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\udfff\ud800',
  '💥🔥',
  '\u202eevil',
  '\ufeff',
  '<script>alert(1)</script>',
  "' OR '1'='1' --",
  '%00',
  '%s%s%n',
  '../../../etc/passwd',
  '$' + '{jndi:ldap://x}',
  '__proto__',
  'constructor',
  'NaN',
  'Infinity',
  '-0',
  '1e309',
  'null',
  'true',
  '{}',
  '[]',
  '0x1f',
  '1,2',
  'books',
  'USD',
  'usd',
);

const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: nastyStrings },
  { weight: 2, arbitrary: fc.string({ maxLength: 80 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9_.:-]{1,70}$/) },
  { weight: 1, arbitrary: fc.integer({ min: 65, max: 70_000 }).map((n) => 'x'.repeat(n)) },
);

const nastyNumbers = fc.constantFrom(0, -0, -1, 1.5, 0.001, 2 ** 31, 2 ** 31 - 1, 2 ** 53 + 2, 1e21, 1e308, -1e308, Number.MIN_VALUE);

/** Deep nesting as JSON text (JSON.stringify of such an object would overflow this test's stack). */
const deepNesting = fc
  .tuple(fc.integer({ min: 50, max: 30_000 }), fc.boolean())
  .map(
    ([depth, objects]) => new Raw(objects ? `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}` : `${'['.repeat(depth)}${']'.repeat(depth)}`),
  );

const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: hostileString },
  { weight: 2, arbitrary: nastyNumbers },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.constantFrom(true, false, null) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: deepNesting },
  {
    weight: 1,
    arbitrary: fc.constantFrom(objectOf([['__proto__', { polluted: true, status: 500 }]]), {
      constructor: { prototype: { polluted: true } },
    }),
  },
);

type Mutation = { kind: 'drop' | 'set' | 'extra'; pick: number; key: string; value: unknown };
const mutation: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom('drop', 'set', 'set', 'extra'),
  pick: fc.nat(),
  key: fc.oneof(fc.constantFrom(...POLLUTION_KEYS), fc.string({ maxLength: 20 })),
  value: hostileValue,
});

/** A valid-looking object with one to three fields dropped, retyped or added. */
function mutate(base: Record<string, unknown>, mutations: Mutation[]): Record<string, unknown> {
  const entries = Object.entries(base);
  for (const m of mutations) {
    const index = entries.length ? m.pick % entries.length : 0;
    if (m.kind === 'drop' && entries.length) entries.splice(index, 1);
    else if (m.kind === 'set' && entries.length) entries[index] = [entries[index]![0], m.value];
    else entries.push([m.key, m.value]);
  }
  return objectOf(entries);
}

const nearValid = (base: fc.Arbitrary<Record<string, unknown>>) =>
  fc.tuple(base, fc.array(mutation, { minLength: 1, maxLength: 3 })).map(([b, ms]) => mutate(b, ms));

const invalidJson = fc.oneof(
  fc.constantFrom(
    '{',
    '}',
    '{"a":}',
    "{'a':1}",
    '{"a":1,}',
    '[1,]',
    'NaN',
    'undefined',
    '{"a":1}{"b":2}',
    '\ufeff{}',
    '{"a":"\\x"}',
    '{"a":"\u0000"}',
  ),
  fc.string({ maxLength: 200 }).filter((s) => !isJson(s)),
  fc.jsonValue().map((v) => {
    const text = JSON.stringify(v) ?? '';
    return text.length > 1 ? text.slice(0, -1) : `${text}{`;
  }),
);

/** JSON that is not an object: the body parser refuses scalars, validation refuses arrays. */
const notAnObject = fc.oneof(
  fc.constantFrom('null', 'true', '0', '-1', '"text"', '[]', '[{}]', '1e400'),
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 5 }).map((a) => JSON.stringify(a)),
);

/** Over the 64 kB body limit, or just under it with one enormous field. */
const hugeBody = fc.tuple(fc.integer({ min: 60_000, max: 200_000 }), fc.constantFrom('string', 'array', 'keys')).map(([size, shape]) => {
  if (shape === 'string') return JSON.stringify({ user_id: 'x'.repeat(size) });
  if (shape === 'array') return `{"items":[${Array.from({ length: Math.floor(size / 2) }, () => '1').join(',')}]}`;
  return `{${Array.from({ length: Math.floor(size / 8) }, (_, i) => `"k${i}":1`).join(',')}}`;
});

/** encodeURIComponent that sends a lone surrogate as its (invalid) UTF-8 bytes instead of throwing. */
function encode(text: string): string {
  return Array.from(text, (ch) => {
    const c = ch.charCodeAt(0);
    if (ch.length === 1 && c >= 0xd800 && c <= 0xdfff) {
      return [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('');
    }
    return encodeURIComponent(ch);
  }).join('');
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Bodies for a JSON endpoint: mostly near-valid objects, then every other kind of bad body. */
function bodies(base: fc.Arbitrary<Record<string, unknown>>): fc.Arbitrary<string | undefined> {
  return fc.oneof(
    { weight: 6, arbitrary: nearValid(base).map(toJson) },
    { weight: 2, arbitrary: base.map(toJson) },
    { weight: 2, arbitrary: invalidJson },
    { weight: 1, arbitrary: notAnObject },
    { weight: 1, arbitrary: deepNesting.map((raw) => raw.text) },
    { weight: 1, arbitrary: hugeBody },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
}

const validId = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,64}$/);
/** Ids of a few carts and shoppers that several endpoints share, so one request's state meets another's. */
const sharedId = fc.constantFrom('fz-a', 'fz-b', 'fz-c', 'fz.d:1', 'x'.repeat(64), 'y'.repeat(60));
const category = fc.oneof(fc.constantFrom(...CATEGORIES), hostileString);
const currency = fc.oneof(fc.constantFrom(...CURRENCIES), fc.constantFrom('usd', 'eur', 'XXX', ''));
const productId = fc.oneof(fc.integer({ min: 1, max: 5_000 }), fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.constantFrom(2 ** 31, 1e12));
const quantity = fc.oneof(fc.integer({ min: 1, max: 99 }), fc.constantFrom(99, 100, 0));
const zip = fc.oneof(fc.stringMatching(/^\d{5}(-\d{4})?$/), fc.constantFrom('94105', '00000', '99999-9999'), hostileString);
const items = fc.array(fc.record({ product_id: productId, quantity }), { minLength: 1, maxLength: 8 });

/** Path ids: valid, out of range, malformed percent-encoding, traversal, huge. */
const pathId = fc.oneof(
  { weight: 2, arbitrary: fc.oneof(validId, sharedId) },
  { weight: 2, arbitrary: hostileString.map(encode).filter((s) => s.length > 0 && s.length < 5_000) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '%',
      '%ZZ',
      '%E0%A4%A',
      '%C0%AF',
      '%00',
      '%2e%2e',
      '..',
      '%2F',
      'a%2Fb',
      '-1',
      '0',
      '1.5',
      '1e3',
      '0x10',
      '2147483648',
      '9007199254740993',
      '99999999999999999999',
      '+1',
      '%20',
      '%0d%0a',
      '%C3%A9',
      'x'.repeat(5_000),
    ),
  },
  { weight: 1, arbitrary: fc.integer().map(String) },
);

type Query = Record<string, string | string[]>;

function queryText(query: Query): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(query)) {
    for (const one of Array.isArray(v) ? v : [v]) parts.push(`${encode(k)}=${encode(one)}`);
  }
  return parts.join('&');
}

/** Query strings: a near-valid query with fields dropped, retyped, repeated or added, or raw garbage. */
function queries(base: fc.Arbitrary<Query>): fc.Arbitrary<string> {
  const queryMutation = fc.record({
    kind: fc.constantFrom('drop', 'set', 'repeat', 'extra'),
    pick: fc.nat(),
    key: fc.oneof(fc.constantFrom(...POLLUTION_KEYS, 'category[]', 'a[b][c]'), fc.string({ maxLength: 10 })),
    value: hostileString.filter((s) => s.length < 1_500),
  });
  const mutated = fc.tuple(base, fc.array(queryMutation, { minLength: 1, maxLength: 3 })).map(([b, ms]) => {
    const entries: [string, string | string[]][] = Object.entries(b);
    for (const m of ms) {
      const index = entries.length ? m.pick % entries.length : 0;
      const entry = entries[index];
      if (m.kind === 'drop' && entry) entries.splice(index, 1);
      else if (m.kind === 'set' && entry) entries[index] = [entry[0], m.value];
      else if (m.kind === 'repeat' && entry) entries[index] = [entry[0], [String(entry[1]), m.value]];
      else entries.push([m.key, m.value]);
    }
    return queryText(objectOf(entries) as Query);
  });
  const raw = fc.constantFrom(
    '%',
    '%%',
    '%ZZ=1',
    'amount=%E0%A4%A',
    '=&=&',
    '&&&',
    '?',
    'a[b]=1',
    '__proto__[polluted]=1',
    '__proto__=1&constructor=2',
    'constructor[prototype][polluted]=1',
    `a=${'x'.repeat(5_000)}`,
    Array.from({ length: 1_500 }, (_, i) => `k${i}=1`).join('&'),
  );
  return fc.oneof({ weight: 5, arbitrary: mutated }, { weight: 2, arbitrary: base.map(queryText) }, { weight: 2, arbitrary: raw });
}

/** Header values node can send: no CR, LF or NUL. */
const headerValue = fc
  .oneof(
    nastyStrings,
    fc.string({ unit: 'binary-ascii', maxLength: 100 }),
    fc.integer({ min: 100, max: 4_000 }).map((n) => 'h'.repeat(n)),
  )
  .map((s) => s.replace(/[^\t\x20-\x7e\x80-\xff]/g, '?'));

const baggageKey = fc.oneof(fc.constantFrom('traffic.type', 'demo.minute', 'userId', '', ' ', '=', 'a b'), fc.string({ maxLength: 12 }));
const baggageEntryValue = fc.oneof(
  fc.constantFrom('evil', 'demo', 'baseline', '999', '-1', '1e3', '99999999999999999999999', '', '%ZZ', '%E2%82', 'a%2Cb', 'x;y'),
  fc.string({ maxLength: 20 }),
);
/** W3C baggage: the story's keys with hostile values, garbage, huge, too many entries. */
const baggage = fc
  .oneof(
    fc.constantFrom(
      'traffic.type=evil',
      'demo.minute=999',
      'traffic.type=evil,demo.minute=999',
      'demo.minute=-1',
      'demo.minute=99999999999999999999999',
      'demo.minute=1e3',
      'demo.minute=',
      'traffic.type=',
      '=',
      ',,,',
      ';;;',
      'traffic.type=%ZZ',
      'traffic.type=%E2%82',
      'traffic.type=demo;prop=1;other',
      'traffic.type=demo,traffic.type=baseline',
      `traffic.type=${'x'.repeat(8_000)}`,
      Array.from({ length: 400 }, (_, i) => `k${i}=v${i}`).join(','),
      'traffic.type=\xff\xfe',
    ),
    fc
      .array(fc.tuple(baggageKey, baggageEntryValue, fc.option(fc.string({ maxLength: 8 }), { nil: undefined })), { maxLength: 12 })
      .map((entries) => entries.map(([k, v, p]) => `${k}=${v}${p === undefined ? '' : `;${p}`}`).join(',')),
    headerValue,
  )
  .map((s) => s.replace(/[^\t\x20-\x7e\x80-\xff]/g, '?'));

const traceparent = fc.oneof(
  fc.constantFrom(
    '00-00000000000000000000000000000000-0000000000000000-01',
    'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    '00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01',
    '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-ff',
    '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331',
    'garbage',
  ),
  headerValue,
);

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=latin1',
  'application/json; charset=utf-16le',
  'application/json; charset=bogus',
  'application/json;;;',
  'application/vnd.api+json',
  'application/merge-patch+json',
  'text/plain',
  'text/json',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/xml',
  '*/*',
  'json',
  '',
  ';',
  'application/json, text/plain',
];

/**
 * The request's headers: always some content type, often hostile baggage, trace context,
 * a future deadline, a content encoding that does not match the body, and a few others.
 */
const headers = fc
  .record(
    {
      'content-type': fc.oneof(
        { weight: 3, arbitrary: fc.constant('application/json') },
        { weight: 2, arbitrary: fc.constantFrom(...CONTENT_TYPES) },
        headerValue,
      ),
      baggage,
      traceparent,
      tracestate: headerValue,
      // Only future deadlines: a deadline already passed is the caller saying it has given
      // up, and a 503/504 is then the designed answer (kit/deadline.ts).
      'x-request-deadline': fc.oneof(
        fc.integer({ min: 10_000, max: 10 ** 11 }).map((ms) => String(Date.now() + ms)),
        fc.constantFrom('0', '-1', 'soon', '1e13', '99999999999999999999', ''),
        headerValue,
      ),
      'content-encoding': fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'compress', 'bogus'),
      'idempotency-key': fc.oneof(validId, headerValue),
      authorization: fc.oneof(fc.constantFrom('Bearer', 'Bearer x', 'Basic Og=='), headerValue),
      origin: fc.constantFrom('https://evil.example', 'null', 'http://localhost:31018'),
      host: fc.constantFrom('evil.example', 'localhost:1', '[::1]:31010', `${'h'.repeat(200)}.example`),
      accept: fc.constantFrom('text/html', '*/*', 'application/xml', ''),
      'accept-charset': fc.constantFrom('utf-16', 'bogus'),
      'x-forwarded-for': fc.oneof(fc.constantFrom('1.2.3.4, ::1', 'garbage', ''), headerValue),
      'x-forwarded-proto': fc.constantFrom('https', 'gopher', ''),
      'x-forwarded-host': headerValue,
      cookie: headerValue,
      'user-agent': headerValue,
      'x-http-method-override': fc.constantFrom('DELETE', 'PUT', 'TRACE'),
    },
    { requiredKeys: [] },
  )
  .map((h) => Object.fromEntries(Object.entries(h).filter(([, v]) => v !== undefined)) as Record<string, string>);

// ------------------------------------------------------------- endpoints --

/**
 * Node answers a request line and headers over 16 kB itself (431, or a reset), before any
 * service code runs: the largest headers are left out until the request fits in 14 kB.
 */
function underHeaderLimit(target: string, h: Record<string, string>): Record<string, string> {
  const out = { ...h };
  const size = () => target.length + Object.entries(out).reduce((sum, [k, v]) => sum + k.length + Buffer.byteLength(v, 'latin1') + 4, 0);
  while (size() > 14_000) {
    const largest = Object.entries(out).sort((a, b) => b[1].length - a[1].length)[0];
    if (!largest) break;
    delete out[largest[0]];
  }
  return out;
}

interface Input {
  /** The path with ids filled in, and the query string if any. */
  path: string;
  headers: Record<string, string>;
  body?: string;
}

interface Endpoint {
  service: ServiceName;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  route: string;
  input: fc.Arbitrary<Input>;
  /** Throws if an input could change the lab's state (the control API's valid requests). */
  guard?: (input: Input) => void;
  /** A 2xx is not a pass for this endpoint (a started scenario). */
  refuse2xx?: boolean;
}

const emptyQuery = fc.constant<Query>({});

/** One endpoint's inputs: a path id (for `:id`), a query string, headers and a body. */
function endpoint(
  service: ServiceName,
  method: Endpoint['method'],
  route: string,
  parts: { query?: fc.Arbitrary<Query>; body?: fc.Arbitrary<string | undefined>; id?: fc.Arbitrary<string> } = {},
  extra: Partial<Endpoint> = {},
): Endpoint {
  const input = fc
    .record({
      id: parts.id ?? pathId,
      query: fc.option(queries(parts.query ?? emptyQuery), { freq: parts.query ? 1 : 3, nil: undefined }),
      headers,
      // GET and DELETE requests get a body now and then too (bodies are not parsed there).
      body: parts.body ?? fc.option(fc.oneof(invalidJson, notAnObject, hugeBody), { freq: 4, nil: undefined }),
    })
    .map(({ id, query, headers: h, body }) => {
      const filled = route.replace(':id', id);
      const target = query === undefined || query === '' ? filled : `${filled}?${query}`;
      return { path: target, headers: underHeaderLimit(target, h), body };
    });
  return { service, method, route, input, ...extra };
}

const obj = <T extends Record<string, fc.Arbitrary<unknown>>>(shape: T, optional: (keyof T)[] = []) =>
  fc.record(shape, { requiredKeys: Object.keys(shape).filter((k) => !optional.includes(k)) as (keyof T & string)[] }) as fc.Arbitrary<
    Record<string, unknown>
  >;
const str = <T extends Record<string, fc.Arbitrary<string>>>(shape: T, optional: (keyof T)[] = []) =>
  obj(shape, optional) as unknown as fc.Arbitrary<Query>;

// POST /scenario/start: every field has a default, so `{}`, no body or unknown keys would
// start the black-friday scenario. Every body sent is made invalid for certain: a rateScale
// that is no number in (0, 100], or not an object, or not JSON at all, or over the limit.
const invalidRateScale = fc.oneof(fc.constantFrom(0, -1, -0.5, 100.5, 1e9, null, '1', true, [], {}), hostileString);
const startBase = obj(
  {
    scenario: fc.oneof(fc.constantFrom('black-friday', 'nope', '../etc/passwd'), hostileString),
    minute: fc.constantFrom('5s', '60s', 'x'),
    timeout: fc.constantFrom('10s', '-1s'),
    rateScale: fc.constant(1),
  },
  ['scenario', 'minute', 'timeout'],
);
/** A (near-)valid body as JSON text whose `field` is always one of the invalid values. */
function withInvalid(base: fc.Arbitrary<Record<string, unknown>>, field: string, invalid: fc.Arbitrary<unknown>): fc.Arbitrary<string> {
  return fc
    .tuple(fc.oneof(base, nearValid(base)), invalid)
    .map(([o, value]) => toJson(objectOf([...Object.entries(o).filter(([k]) => k !== field), [field, value]])));
}
const startBodies: fc.Arbitrary<string | undefined> = fc.oneof(
  {
    weight: 6,
    arbitrary: withInvalid(startBase, 'rateScale', invalidRateScale),
  },
  { weight: 2, arbitrary: invalidJson },
  { weight: 1, arbitrary: notAnObject },
  { weight: 1, arbitrary: deepNesting.filter((raw) => raw.text.startsWith('[')).map((raw) => raw.text) },
  { weight: 1, arbitrary: hugeBody.filter((text) => Buffer.byteLength(text) > 64 * 1024) },
);

/** Refuses to send a start request that could be valid (a copy of StartBody's rateScale rule). */
function guardStart(input: Input): void {
  const body = input.body;
  if (body === undefined) throw new Error('a start request without a body would start a scenario');
  if (Buffer.byteLength(body) > 64 * 1024) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return;
  const rate = (parsed as { rateScale?: unknown }).rateScale;
  if (Object.hasOwn(parsed, 'rateScale') && !(typeof rate === 'number' && rate > 0 && rate <= 100)) return;
  throw new Error(`refusing to send a start body that could be valid: ${body.slice(0, 200)}`);
}

// PUT /scenario/knobs publishes a scenario state: every body sent has a minuteMs that is no
// positive integer, or is no object at all.
const invalidMinuteMs = fc.oneof(fc.constantFrom(0, -1, 1.5, -0, null, '5000', true, [], {}, Number.POSITIVE_INFINITY), hostileString);
const knobsBase = obj({
  scenario: fc.oneof(fc.constant('black-friday'), hostileString),
  startedAt: fc.oneof(fc.constant(new Date(0).toISOString()), hostileString),
  minute: fc.oneof(fc.nat(20), hostileValue),
  label: fc.oneof(fc.constant('peak'), hostileString),
  knobs: fc.oneof(
    fc.constant({ recommendation_query_cost_ms: 5_000, checkout_write_delay_ms: 9_999 }),
    fc.dictionary(fc.string(), hostileValue),
  ),
});
const knobsBodies: fc.Arbitrary<string | undefined> = fc.oneof(
  {
    weight: 6,
    arbitrary: withInvalid(knobsBase, 'minuteMs', invalidMinuteMs),
  },
  { weight: 2, arbitrary: invalidJson },
  { weight: 1, arbitrary: notAnObject },
  { weight: 1, arbitrary: hugeBody.filter((text) => Buffer.byteLength(text) > 64 * 1024) },
);

function guardKnobs(input: Input): void {
  const body = input.body;
  if (body === undefined) return; // validated as {}: missing fields
  if (Buffer.byteLength(body) > 64 * 1024) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return;
  const ms = (parsed as { minuteMs?: unknown }).minuteMs;
  if (!(typeof ms === 'number' && Number.isInteger(ms) && ms > 0)) return;
  throw new Error(`refusing to send a knobs body that could be valid: ${body.slice(0, 200)}`);
}

const user = fc.oneof(validId, sharedId);

const SERVICE_ENDPOINTS: Endpoint[] = [
  endpoint('ad', 'GET', '/ads', {
    query: str({ category, count: fc.oneof(fc.integer({ min: 1, max: 10 }).map(String), hostileString) }, ['category']),
  }),
  endpoint('cart', 'GET', '/cart/:id'),
  endpoint('cart', 'POST', '/cart/:id/items', {
    id: fc.oneof(sharedId, pathId),
    body: bodies(
      obj(
        {
          product_id: productId,
          quantity,
          unit_price_cents: fc.oneof(fc.integer({ min: 1, max: 100_000 }), fc.constantFrom(2 ** 31, 2 ** 53)),
          name: fc.oneof(fc.string({ maxLength: 200 }), hostileString),
          category,
        },
        ['quantity', 'unit_price_cents', 'name', 'category'],
      ),
    ),
  }),
  endpoint('cart', 'DELETE', '/cart/:id'),
  endpoint('checkout', 'POST', '/orders/create', {
    body: bodies(
      obj(
        {
          user_id: user,
          items: fc.array(fc.record({ product_id: fc.integer({ min: 1, max: 5_000 }), quantity }), { minLength: 1, maxLength: 5 }),
          shipping_cents: fc.oneof(fc.integer({ min: 0, max: 1_000_000 }), nastyNumbers),
          currency: fc.constantFrom('USD', 'usd', 'EUR'),
          payment_id: fc.oneof(fc.string({ maxLength: 100 }), fc.string({ unit: 'binary', maxLength: 100 }), nastyStrings),
        },
        ['shipping_cents', 'currency', 'payment_id'],
      ),
    ),
  }),
  endpoint('checkout', 'GET', '/orders/:id'),
  endpoint('currency', 'GET', '/convert', {
    query: str({
      amount: fc.oneof(fc.double({ min: 0, max: 1e13, noNaN: true }).map(String), fc.nat().map(String), hostileString),
      from: currency,
      to: currency,
    }),
  }),
  endpoint('currency', 'GET', '/currencies'),
  endpoint('frontend', 'POST', '/api/browse', {
    body: bodies(obj({ user_id: user, cart_id: user, category, currency }, ['user_id', 'cart_id', 'category', 'currency'])),
  }),
  endpoint('frontend', 'POST', '/api/checkout', { body: bodies(obj({ user_id: user, cart_id: sharedId, zip }, ['zip'])) }),
  endpoint('load-generator', 'POST', '/scenario/start', { body: startBodies }, { guard: guardStart, refuse2xx: true }),
  endpoint('load-generator', 'POST', '/scenario/stop', {
    body: fc.oneof(invalidJson, notAnObject, hugeBody, nearValid(obj({ scenario: hostileString })).map(toJson)),
  }),
  endpoint('load-generator', 'PUT', '/scenario/knobs', { body: knobsBodies }, { guard: guardKnobs }),
  endpoint('load-generator', 'DELETE', '/scenario/knobs'),
  endpoint('load-generator', 'GET', '/scenario/status'),
  endpoint('payment', 'POST', '/api/payment/process', {
    body: bodies(
      obj(
        {
          amount: fc.oneof(
            fc.integer({ min: 1, max: 5_000_000 }).map((c) => c / 100),
            fc.double({ min: 0, max: 2e6, noNaN: true }),
            nastyNumbers,
          ),
          user_id: user,
          currency: fc.oneof(currency, hostileString),
        },
        ['currency'],
      ),
    ),
  }),
  endpoint('product-catalog', 'GET', '/products', {
    query: str(
      {
        category,
        ids: fc.oneof(
          fc.array(productId, { minLength: 1, maxLength: 120 }).map((a) => a.join(',')),
          hostileString,
        ),
        limit: fc.oneof(fc.integer({ min: 1, max: 100 }).map(String), hostileString),
        offset: fc.oneof(fc.integer({ min: 0, max: 20_000 }).map(String), hostileString),
      },
      ['category', 'ids', 'limit', 'offset'],
    ),
  }),
  endpoint('product-catalog', 'GET', '/products/recommendations', {
    query: str({ category, user_id: user, limit: fc.oneof(fc.integer({ min: 1, max: 20 }).map(String), hostileString) }, [
      'user_id',
      'limit',
    ]),
  }),
  endpoint('product-catalog', 'GET', '/products/:id', { id: fc.oneof(fc.integer({ min: -10, max: 6_000 }).map(String), pathId) }),
  endpoint('recommendation', 'POST', '/recommend', {
    body: bodies(obj({ user_id: user, category, limit: fc.oneof(fc.integer({ min: 1, max: 20 }), nastyNumbers) }, ['limit'])),
  }),
  endpoint('shipping', 'POST', '/calculate', { body: bodies(obj({ items, zip })) }),
];

const SERVICES = Object.keys(SERVICE_PORTS) as ServiceName[];
const ENDPOINTS: Endpoint[] = [
  ...SERVICES.flatMap((service) => [endpoint(service, 'GET', '/health'), endpoint(service, 'GET', '/ready')]),
  ...SERVICE_ENDPOINTS,
];
const label = (e: Pick<Endpoint, 'service' | 'method' | 'route'>) => `${e.service} ${e.method} ${e.route}`;

/** The routes each service registers, read from its source (kit's /health and /ready for all). */
function routesInSource(): string[] {
  const routesOf = (file: string) =>
    [...readFileSync(path.join(root, file), 'utf8').matchAll(/router\.(get|post|put|delete|patch|all)\(\s*'([^']+)'/g)].map(
      ([, method, route]) => `${method!.toUpperCase()} ${route}`,
    );
  const common = routesOf('packages/kit/src/app.ts');
  // The load generator's routes are its service's (src/service/app.ts); each shop service's in src/app.ts.
  const appOf = (service: string) =>
    service === 'load-generator' ? 'services/load-generator/src/service/app.ts' : `services/${service}/src/app.ts`;
  return SERVICES.flatMap((service) => [...common, ...routesOf(appOf(service))].map((route) => `${service} ${route}`));
}

// ------------------------------------------------------------------ HTTP --

interface Answer {
  status: number;
  contentType: string;
  text: string;
}

// A connection per request: a kept-alive one the service closes while idle would read as a reset.
const agent = new Agent({ keepAlive: false });

function send(port: number, method: string, input: Input): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = input.body === undefined ? undefined : Buffer.from(input.body, 'utf8');
    const headers: Record<string, string> = { ...input.headers };
    if (!body) delete headers['content-type'];
    else headers['content-length'] = String(body.length);
    const req = httpRequest({ host: '127.0.0.1', port, method, path: input.path, headers, agent, timeout: 20_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          contentType: String(res.headers['content-type'] ?? ''),
          text: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 20 s')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Writes raw bytes to a service and reads what it answers until it closes the connection. */
function rawExchange(port: number, request: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port, timeout: 5_000 });
    const chunks: Buffer[] = [];
    socket.on('connect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('timeout', () => socket.destroy(new Error('the connection stayed open 5 s after a refused request')));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://lab:lab@localhost:5432/lab';

/** Whether something accepts connections on host:port right now. */
function reachable(url: string, defaultPort: number): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise<boolean>((resolve) => {
    const socket = createConnection({ host: hostname || 'localhost', port: Number(port || defaultPort), timeout: 1_000 });
    socket.once('connect', () => {
      socket.end();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => resolve(false));
    socket.once('close', () => socket.destroy());
  });
}

/**
 * A 503 that says PostgreSQL or Redis is down. Other test files stop and restart both
 * (faults.test.ts) while this one runs: such an answer is waited out and the input sent
 * again, and only a 5xx with both up fails the property.
 */
function dependencyDown(answer: Answer): boolean {
  return answer.status === 503 && /(redis|postgres)(-| is )unavailable|not ready|ECONNREFUSED|Connection is closed/.test(answer.text);
}

async function depsUp(timeoutMs = 60_000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if ((await reachable(DATABASE_URL, 5432)) && (await reachable(REDIS_URL, 6379))) return true;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return false;
}

let outages = 0;
let resets = 0;

/** Sends the input; a dependency outage caused by another test is waited out, up to three times. */
async function sendThroughOutages(port: number, method: string, input: Input): Promise<Answer> {
  let answer = await send(port, method, input);
  for (let attempt = 0; attempt < 3 && dependencyDown(answer); attempt++) {
    outages++;
    await depsUp();
    // The services' pools reconnect on their own schedule (Redis retries every 200 ms to 2 s).
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    answer = await send(port, method, input);
  }
  return answer;
}

const short = (text: string, n = 300) => (text.length > n ? `${text.slice(0, n)}... (${text.length} chars)` : text);

function describeInput(e: Endpoint, input: Input): string {
  const h = Object.entries(input.headers)
    .map(([k, v]) => `${k}: ${short(JSON.stringify(v), 120)}`)
    .join('; ');
  return `${e.method} ${short(input.path, 200)} [${h}] body=${input.body === undefined ? '(none)' : short(JSON.stringify(input.body))}`;
}

// ----------------------------------------------------------------- tests --

let lab: Lab | undefined;
let crashed: string | undefined;
const receiver = new OtlpReceiver();
const errorLines: string[] = [];
const counts = new Map<string, number>();

beforeAll(async () => {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  await redis.flushdb();
  await redis.quit();
  await receiver.start();
  lab = await startLab({
    services: SERVICES,
    ports,
    env: {
      REDIS_URL,
      LATENCY_SCALE: '0',
      LOG_LEVEL: 'warn',
      BASELINE_RPM: '0',
      LAB_CONTROL_TOKEN: undefined,
      // Telemetry on (to a receiver here), so baggage and trace context are parsed as in the lab.
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: '500',
      OTEL_METRIC_EXPORT_INTERVAL: '2000',
    },
    onLine: (name, line) => {
      if (/"level":(50|60)|error|Error/.test(line)) errorLines.push(`${name} | ${line}`);
    },
  });
  void lab.exited.then((exit) => {
    crashed = `${exit.name} exited (code ${exit.code}, signal ${exit.signal})`;
  });
  console.log(`bad-input: seed ${SEED} (BAD_INPUT_SEED), ${RUNS} inputs per endpoint (BAD_INPUT_RUNS), ${ENDPOINTS.length} endpoints`);
}, 120_000);

afterAll(async () => {
  agent.destroy();
  await lab?.stop();
  await receiver.stop();
  const width = Math.max(...ENDPOINTS.map((e) => label(e).length));
  for (const e of ENDPOINTS) console.log(`bad-input: ${label(e).padEnd(width)}  ${counts.get(label(e)) ?? 0} inputs`);
  if (outages)
    console.log(`bad-input: ${outages} answers were a PostgreSQL or Redis outage (another test stopping them), waited out and sent again`);
  if (resets) console.log(`bad-input: ${resets} oversized bodies were cut off by a connection reset; the service still answered /health`);
  if (errorLines.length) console.log(`bad-input: error log lines of the services:\n${errorLines.slice(-30).join('\n')}`);
});

describe('bad input', () => {
  it('lists every route the services register', () => {
    const listed = new Set(ENDPOINTS.map(label));
    expect(routesInSource().filter((route) => !listed.has(route))).toEqual([]);
  });

  for (const e of ENDPOINTS) {
    it(`${label(e)}: no 5xx, no crash, every 4xx a JSON error with a message`, async () => {
      const port = ports[e.service];
      await fc.assert(
        fc.asyncProperty(e.input, async (input) => {
          e.guard?.(input);
          counts.set(label(e), (counts.get(label(e)) ?? 0) + 1);
          if (crashed) throw new Error(`a service died before this input: ${crashed}`);
          let answer: Answer;
          try {
            answer = await sendThroughOutages(port, e.method, input);
          } catch (error) {
            const message = (error as Error).message;
            // A service may answer (413, 415) without reading a body over its limit, and close
            // the connection while this side still writes it: fine, if the service lives on.
            const oversized = input.body !== undefined && Buffer.byteLength(input.body) > 64 * 1024;
            if (oversized && /ECONNRESET|EPIPE/.test(message) && !crashed) {
              const health = await send(port, 'GET', { path: '/health', headers: {} });
              if (health.status === 200) {
                resets++;
                return;
              }
            }
            throw new Error(`no answer (${message}) to ${describeInput(e, input)}${crashed ? `: ${crashed}` : ''}`);
          }
          const what = `${answer.status} ${short(answer.text)} for ${describeInput(e, input)}`;
          if (crashed) throw new Error(`${crashed} after ${what}`);
          if (answer.status >= 500) throw new Error(`5xx: ${what}`);
          if (e.refuse2xx && answer.status < 300) {
            await send(port, 'POST', { path: '/scenario/stop', headers: { 'content-type': 'application/json' }, body: '{}' }).catch(
              () => undefined,
            );
            throw new Error(`the control API accepted an input meant to be invalid: ${what}`);
          }
          if (answer.status >= 400) {
            let body: unknown;
            try {
              body = JSON.parse(answer.text);
            } catch {
              throw new Error(`4xx without a JSON body: ${what}`);
            }
            const message = (body as { error?: unknown } | null)?.error;
            if (!/json/.test(answer.contentType) || typeof message !== 'string' || message === '') {
              throw new Error(`4xx without { error: "<message>" } (content-type ${answer.contentType}): ${what}`);
            }
          }
        }),
        { seed: SEED, numRuns: RUNS, endOnFailure: true },
      );
      expect(counts.get(label(e)) ?? 0).toBeGreaterThanOrEqual(MIN_INPUTS);
    }, 120_000);
  }

  it("every service answers a request its HTTP parser refuses with a JSON 4xx, not Node's bodiless 400", async () => {
    // What an HTTP client library will not send: raw bytes on a socket.
    const raw = [
      Buffer.from('GET /api/products/\xe9\xff HTTP/1.1\r\nHost: localhost\r\n\r\n', 'latin1'),
      Buffer.from('GET /health now HTTP/1.1\r\nHost: localhost\r\n\r\n'),
      Buffer.from('GET /health HTTP/1.1\r\nHost: localhost\r\nBad Header: x\r\n\r\n'),
      Buffer.from(`GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`),
      Buffer.from('NOT-HTTP\r\n\r\n'),
    ];
    const seen = new Set<number>();
    for (const service of Object.keys(ports) as (keyof typeof ports)[]) {
      for (const request of raw) {
        const answer = await rawExchange(ports[service], request);
        const [, status, rest] = /^HTTP\/1\.1 (\d{3}) [^\r]*\r\n([\s\S]*)$/.exec(answer) ?? [];
        const what = `${service}: ${short(JSON.stringify(answer))} for ${short(JSON.stringify(request.toString('latin1')), 80)}`;
        expect(Number(status), what).toBeGreaterThanOrEqual(400);
        expect(Number(status), what).toBeLessThan(500);
        seen.add(Number(status));
        const [head, body] = (rest ?? '').split('\r\n\r\n');
        expect(head, what).toMatch(/content-type: application\/json/i);
        expect((JSON.parse(body ?? '') as { error?: unknown }).error, what).toMatch(/^(malformed HTTP request|request headers too large)/);
      }
    }
    expect([...seen].sort()).toEqual([400, 431]);
  }, 60_000);

  it('left every process running and no scenario started', async () => {
    expect(crashed).toBeUndefined();
    for (const p of lab?.processes ?? []) expect(() => process.kill(p.pid, 0), p.name).not.toThrow();
    const status = await send(ports['load-generator'], 'GET', { path: '/scenario/status', headers: {} });
    expect(JSON.parse(status.text).state).toBe('idle');
    // Telemetry was on: the services exported the spans of these requests.
    expect(receiver.spans.length).toBeGreaterThan(0);
  }, 30_000);
});
