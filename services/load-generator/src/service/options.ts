/** Parses `500ms`, `5s`, `1.5m` (and bare seconds) into milliseconds. */
import { errorCause } from '@bfl/kit/errors';
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!match) throw new Error(`"${text}" is not a duration (e.g. 500ms, 5s, 1m)`);
  const value = Number(match[1]);
  const unit = match[2] ?? 's';
  const ms = unit === 'ms' ? value : unit === 's' ? value * 1000 : value * 60_000;
  if (ms <= 0) throw new Error(`"${text}" must be longer than zero`);
  return Math.round(ms);
}

export function parseUrl(text: string, what: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`${what} "${text}" is not a URL (e.g. http://localhost:8018)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`${what} "${text}" must be http:// or https://`);
  return url.toString().replace(/\/$/, '');
}

export function parseScale(text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0 || value > 100)
    throw new Error(`--rate-scale "${text}" must be a number above 0 and at most 100`);
  return value;
}

/** Fails fast, before any traffic, when the target does not answer its /health. */
export async function checkTarget(target: string): Promise<void> {
  try {
    const response = await fetch(`${target}/health`, { signal: AbortSignal.timeout(3_000) });
    if (!response.ok) throw new Error(`GET /health answered ${response.status}`);
  } catch (error) {
    const cause = errorCause(error);
    throw new Error(`target ${target} is unreachable (${cause}); is the lab running? (npm run lab or docker compose up)`);
  }
}
