/**
 * The lab's alert rules, rendered for a demo-minute length from their one source,
 * observability/alerts/black-friday.rules.yaml, whose durations are written in demo
 * minutes (`2dm`, `0.25dm`). A developer tool (npm run alerts:render, the --observe lab,
 * the scenario's --verify-alerts); the services never load it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './lab.js';

const ALERT_RULES_SOURCE = path.join(REPO_ROOT, 'observability/alerts/black-friday.rules.yaml');
/** The rendering that ships (Compose, Kubernetes): 60 s demo minutes. */
export const SHIPPED_RULES = path.join(REPO_ROOT, 'observability/prometheus/black-friday.rules.yaml');
export const SHIPPED_MINUTE_MS = 60_000;
export { REPO_ROOT };
/** The label every rendered rule (and so every ALERTS series) carries. */
export const RENDERED_FOR_LABEL = 'rendered_for_minute';
/** Prometheus evaluates nothing more often than this. */
const MIN_INTERVAL_MS = 1_000;

/** 120000 -> "2m", 2500 -> "2s500ms", 1000 -> "1s": Prometheus's duration syntax. */
export function promDuration(ms: number): string {
  if (!Number.isInteger(ms) || ms <= 0) throw new Error(`cannot write ${ms} ms as a Prometheus duration`);
  const units: [string, number][] = [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
    ['ms', 1],
  ];
  let rest = ms;
  let text = '';
  for (const [unit, size] of units) {
    const count = Math.floor(rest / size);
    if (count > 0) text += `${count}${unit}`;
    rest -= count * size;
  }
  return text;
}

/** How a demo-minute length is named in rule groups and labels: `60s`, `5s`, `2500ms`. */
export function minuteLabel(ms: number): string {
  return ms % 1_000 === 0 ? `${ms / 1_000}s` : `${ms}ms`;
}

/** The inverse of promDuration for the forms it writes (and plain `5s`, `1m`). */
export function parsePromDuration(text: string): number {
  const match = /^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$/.exec(text);
  if (!text || !match) throw new Error(`"${text}" is not a Prometheus duration`);
  const [, h = '0', m = '0', s = '0', ms = '0'] = match;
  return Number(h) * 3_600_000 + Number(m) * 60_000 + Number(s) * 1_000 + Number(ms);
}

/**
 * Renders the rule source for demo minutes of `minuteMs`: every `<N>dm` becomes N demo
 * minutes in Prometheus's syntax (whole milliseconds; group intervals at least 1 s) and
 * `{{minute}}` the minute length itself. Comments stay, so the runbooks travel along.
 */
export function renderRules(minuteMs: number, source = readFileSync(ALERT_RULES_SOURCE, 'utf8')): string {
  if (!Number.isInteger(minuteMs) || minuteMs < 1_000) throw new Error(`a demo minute must be at least 1 s, got ${minuteMs} ms`);
  const minute = minuteLabel(minuteMs);
  const demoMinutes = (n: string, floorMs: number) => promDuration(Math.max(floorMs, Math.round(Number(n) * minuteMs)));
  // Comment lines are kept as written (they explain the source's units).
  const body = source
    .split('\n')
    .map((line) =>
      /^\s*#/.test(line)
        ? line
        : line
            .replace(
              /^(\s*interval:\s*)(\d+(?:\.\d+)?)dm\b/,
              (_all, prefix: string, n: string) => `${prefix}${demoMinutes(n, MIN_INTERVAL_MS)}`,
            )
            .replace(/\b(\d+(?:\.\d+)?)dm\b/g, (_all, n: string) => demoMinutes(n, 1))
            .replaceAll('{{minute}}', minute),
    )
    .join('\n');
  const header = [
    `# GENERATED for ${minute} demo minutes from observability/alerts/black-friday.rules.yaml`,
    `# by \`npm run alerts:render -- --minute ${minute}\`: edit the source, then render again.`,
    '',
  ].join('\n');
  return `${header}${body}`;
}
