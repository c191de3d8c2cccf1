/** Calls the load-generator service's control API; errors become one clear line. */
import { errorCause } from '@bfl/kit/errors';
export async function controlRequest(
  base: string,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  route: string,
  token?: string,
  body?: unknown,
): Promise<unknown> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  // A state-changing call is JSON, an empty object when it has nothing to say (the
  // control API refuses any other content type: no cross-site form or text/plain posts).
  const sent = method === 'GET' ? undefined : (body ?? {});
  if (sent !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(`${base}${route}`, {
      method,
      headers,
      body: sent === undefined ? undefined : JSON.stringify(sent),
      signal: AbortSignal.timeout(5_000),
    });
  } catch (error) {
    const cause = errorCause(error);
    throw new Error(`the load generator at ${base} is unreachable (${cause}); is it running?`);
  }
  const answer = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok) throw new Error(`${method} ${route} answered ${response.status}: ${String(answer.error ?? 'no reason given')}`);
  return answer;
}
