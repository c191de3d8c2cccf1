/**
 * Applying the rendered alert definitions to a Coralogix account, idempotently by name,
 * through the Alerts API v3 over REST (Coralogix's API reference, "Alert definitions
 * service"; the paths are the grpc-gateway mappings of AlertDefsService):
 *
 *   GET  <base>                      list   -> { alertDefs: [{ id, alertDefProperties }], pagination? }
 *   POST <base>   AlertDefProperties create -> { alertDef: { id, alertDefProperties } }
 *   PUT  <base>   { id, alertDefProperties } replace (the id stays)
 *
 * with <base> = https://api.<domain>/mgmt/openapi/latest/alerts/alerts-general/v3 and the
 * key as `Authorization: Bearer <key>`: a management API key with the Alerts permissions
 * (alerts:ReadConfig, alerts:UpdateConfig), never the Send-Your-Data key.
 *
 * A definition whose name exists is replaced when it differs and left alone when it does
 * not; one that does not exist is created; nothing is deleted. Two existing definitions
 * with the same name are an error: which one the lab owns cannot be told.
 */

import { errorCause } from '@bfl/kit/errors';
import type { AlertDef } from './alerts.js';

export const alertsApiBase = (domain: string) => `https://api.${domain}/mgmt/openapi/latest/alerts/alerts-general/v3`;

class CoralogixApiError extends Error {}

interface Existing {
  id: string;
  alertDefProperties: Record<string, unknown>;
}

export interface ApplyResult {
  name: string;
  action: 'created' | 'replaced' | 'unchanged';
  id: string;
}

/** Is everything `wanted` sets the same in `actual` (which may carry defaults and more)? */
function sameDefinition(wanted: unknown, actual: unknown): boolean {
  if (Array.isArray(wanted))
    return Array.isArray(actual) && wanted.length === actual.length && wanted.every((w, i) => sameDefinition(w, actual[i]));
  if (wanted && typeof wanted === 'object') {
    if (!actual || typeof actual !== 'object') return false;
    return Object.entries(wanted).every(([k, v]) => sameDefinition(v, (actual as Record<string, unknown>)[k]));
  }
  return wanted === actual;
}

async function call(base: string, key: string, method: string, body?: unknown, query = ''): Promise<Record<string, unknown>> {
  let response: Response;
  try {
    response = await fetch(`${base}${query}`, {
      method,
      headers: { authorization: `Bearer ${key}`, accept: 'application/json', ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    throw new CoralogixApiError(`${method} ${base}: ${errorCause(error)}`);
  }
  const text = await response.text();
  if (response.status === 401 || response.status === 403)
    throw new CoralogixApiError(
      `${method} ${base}: ${response.status}: the key was refused; CORALOGIX_API_KEY must be a management API key with the Alerts permissions (not the Send-Your-Data key)`,
    );
  if (!response.ok) throw new CoralogixApiError(`${method} ${base}: ${response.status} ${text.slice(0, 500)}`);
  try {
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    throw new CoralogixApiError(`${method} ${base}: ${response.status} with a body that is not JSON: ${text.slice(0, 200)}`);
  }
}

async function listAll(base: string, key: string): Promise<Existing[]> {
  const all: Existing[] = [];
  let token = '';
  for (let page = 0; page < 100; page++) {
    const body = await call(base, key, 'GET', undefined, token ? `?pagination.pageToken=${encodeURIComponent(token)}` : '');
    const defs = (body.alertDefs ?? []) as Existing[];
    if (!Array.isArray(defs)) throw new CoralogixApiError(`GET ${base}: alertDefs is not a list`);
    all.push(...defs);
    token = String((body.pagination as { nextPageToken?: string } | undefined)?.nextPageToken ?? '');
    if (!token) return all;
  }
  throw new CoralogixApiError(`GET ${base}: more than 100 pages of alert definitions`);
}

/** Creates or replaces each definition by name; returns what it did, in order. */
export async function applyAlerts(base: string, key: string, defs: AlertDef[]): Promise<ApplyResult[]> {
  const existing = await listAll(base, key);
  const byName = new Map<string, Existing[]>();
  for (const e of existing) {
    const name = String(e.alertDefProperties?.name ?? '');
    byName.set(name, [...(byName.get(name) ?? []), e]);
  }
  const results: ApplyResult[] = [];
  for (const def of defs) {
    const found = byName.get(def.name) ?? [];
    if (found.length > 1)
      throw new CoralogixApiError(
        `${found.length} alert definitions are named "${def.name}" (ids ${found.map((f) => f.id).join(', ')}): delete all but one, then apply again`,
      );
    const [current] = found;
    if (!current) {
      const created = await call(base, key, 'POST', def);
      const id = String((created.alertDef as { id?: string } | undefined)?.id ?? '');
      results.push({ name: def.name, action: 'created', id });
    } else if (sameDefinition(def, current.alertDefProperties)) {
      results.push({ name: def.name, action: 'unchanged', id: current.id });
    } else {
      await call(base, key, 'PUT', { id: current.id, alertDefProperties: def });
      results.push({ name: def.name, action: 'replaced', id: current.id });
    }
  }
  return results;
}
