import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { errorCause } from '../src/errors.js';

/** A loopback port that was just free: nothing listens there. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('errorCause', () => {
  it("gives a failed fetch's reason from its cause, not just 'fetch failed'", async () => {
    const port = await closedPort();
    const error = await fetch(`http://127.0.0.1:${port}/`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as Error).message).toBe('fetch failed');
    expect(errorCause(error)).toMatch(new RegExp(`ECONNREFUSED 127\\.0\\.0\\.1:${port}`));
  });

  it("gives a cause's code when it has no message, else the error's own message", () => {
    expect(errorCause(new Error('outer', { cause: { code: 'ENOTFOUND' } }))).toBe('ENOTFOUND');
    expect(errorCause(new Error('outer', { cause: new Error('inner') }))).toBe('inner');
    expect(errorCause(new Error('plain'))).toBe('plain');
    expect(errorCause('a string')).toBe('a string');
  });
});
