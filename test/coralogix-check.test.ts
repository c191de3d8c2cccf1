/**
 * `npm run coralogix:check` against the LOCAL STAND-IN ingress (test/coralogix-ingress.ts):
 * with the right settings it reports ok and the stand-in holds one span, one metric point
 * and one log record with the key, application and subsystem in Coralogix's form; a wrong
 * key, an untrusted certificate and a closed port each get their own verdict and exit 1;
 * missing settings exit 2 before anything is sent. No address beyond loopback is used (a
 * wrong domain's failed DNS lookup is checked on its error, not by asking a resolver).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classify } from '../packages/coralogix/src/check.js';
import { logsOf, pointsOf, StandInIngress, spansOf, type ThrowawayCa, throwawayCa } from './coralogix-ingress.js';

const root = path.resolve(__dirname, '..');
const run = promisify(execFile);
// A throwaway key, known only to the stand-in.
const KEY = `cxtest-${randomBytes(16).toString('hex')}`;
let ca: ThrowawayCa;
let ingress: StandInIngress;

beforeAll(async () => {
  ca = throwawayCa();
  ingress = new StandInIngress(ca, KEY);
  await ingress.start();
});
afterAll(() => ingress?.stop());

async function check(env: Record<string, string>) {
  const settings = {
    PATH: process.env.PATH ?? '',
    CORALOGIX_DOMAIN: 'eu2.coralogix.com',
    CORALOGIX_PRIVATE_KEY: KEY,
    CORALOGIX_APPLICATION_NAME: 'black-friday-lab',
    CORALOGIX_SUBSYSTEM_NAME: 'lab',
    CORALOGIX_INGRESS_ENDPOINT: ingress.endpoint,
    NODE_EXTRA_CA_CERTS: ca.caFile,
    ...env,
  };
  try {
    const { stdout, stderr } = await run('node', ['packages/coralogix/dist/check-cli.js'], { cwd: root, env: settings });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, output: e.stdout + e.stderr };
  }
}

describe('npm run coralogix:check', () => {
  it('sends one span, one metric point and one log record, and reports ok', async () => {
    const before = ingress.requests.length;
    const result = await check({});
    expect(result.code, result.output).toBe(0);
    expect(result.output).toMatch(/traces +ok: accepted/);
    expect(result.output).toMatch(/metrics +ok: accepted/);
    expect(result.output).toMatch(/logs +ok: accepted/);
    expect(result.output).not.toContain(KEY);
    const requests = ingress.requests.slice(before);
    expect(requests.map((r) => [r.signal, r.answer])).toEqual([
      ['traces', 'ok'],
      ['metrics', 'ok'],
      ['logs', 'ok'],
    ]);
    for (const r of requests) {
      expect(r.metadata.authorization).toBe(`Bearer ${KEY}`);
      expect(r.metadata['cx-application-name']).toBe('black-friday-lab');
      expect(r.metadata['cx-subsystem-name']).toBe('lab');
    }
    const [span] = spansOf(requests);
    const [point] = pointsOf(requests);
    const [log] = logsOf(requests);
    for (const item of [span, point, log]) {
      expect(item?.resource['cx.application.name']).toBe('black-friday-lab');
      expect(item?.resource['cx.subsystem.name']).toBe('lab');
      expect(item?.resource['service.name']).toBe('black-friday-lab-check');
    }
    expect([spansOf(requests).length, pointsOf(requests).length, logsOf(requests).length]).toEqual([1, 1, 1]);
  });

  it('says the key was refused when it was', async () => {
    const result = await check({ CORALOGIX_PRIVATE_KEY: 'not-the-key' });
    expect(result.code).toBe(1);
    expect(result.output).toMatch(/traces +key refused: the ingress refused the key \(UNAUTHENTICATED/);
    expect(result.output).toContain('FAILED');
  });

  it('says when the certificate is not trusted, and when nothing answers', async () => {
    const untrusted = await check({ NODE_EXTRA_CA_CERTS: '' });
    expect(untrusted.code).toBe(1);
    expect(untrusted.output).toMatch(/traces +(tls|unreachable):.*(certificate|self.signed|issuer)/i);
    const closed = await check({ CORALOGIX_INGRESS_ENDPOINT: '127.0.0.1:1' });
    expect(closed.code).toBe(1);
    expect(closed.output).toMatch(/traces +unreachable: 127\.0\.0\.1:1 is unavailable/);
  });

  it('names a wrong domain when the ingress name does not resolve', () => {
    const error = Object.assign(new Error('14 UNAVAILABLE: Name resolution failed for target dns:ingress.eu9.coralogix.com:443'), {
      code: status.UNAVAILABLE,
      details: 'Name resolution failed for target dns:ingress.eu9.coralogix.com:443',
      metadata: undefined as never,
    });
    expect(classify(error, 'ingress.eu9.coralogix.com:443', 'eu9.coralogix.com')).toMatchObject({
      verdict: 'wrong domain',
      detail: 'ingress.eu9.coralogix.com:443 does not resolve: is CORALOGIX_DOMAIN (eu9.coralogix.com) right?',
    });
  });

  it('exits 2 naming what is missing, before sending anything', async () => {
    const before = ingress.requests.length;
    const result = await check({ CORALOGIX_PRIVATE_KEY: '', CORALOGIX_DOMAIN: '' });
    expect(result.code).toBe(2);
    expect(result.output).toContain('set CORALOGIX_DOMAIN, CORALOGIX_PRIVATE_KEY');
    const bad = await check({ CORALOGIX_DOMAIN: 'https://eu2.coralogix.com/' });
    expect(bad.code).toBe(2);
    expect(bad.output).toContain('is not a domain');
    expect(ingress.requests.length).toBe(before);
  });
});
