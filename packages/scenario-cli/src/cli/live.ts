import type { MinuteRow, Progress } from '@bfl/load-generator/runner';
import { TRAFFIC_CLASSES } from '@bfl/load-generator/scenario';
import type { ClassRow } from '@bfl/load-generator/stats';

const pct = (v: number) => `${(v * 100).toFixed(1).padStart(5)}%`;
const ms = (v: number) => `${v.toFixed(0).padStart(5)} ms`;

function cell(cls: string, t: ClassRow): string {
  return `${cls} ${t.achievedRps.toFixed(2).padStart(6)}/${t.targetRps.toFixed(2).padEnd(6)} rps  err ${pct(t.errorRate)}  p95 ${ms(t.p95Ms)}`;
}

/** One line per finished minute. */
export function minuteLine(row: MinuteRow, minutes: number): string {
  const label = row.label ? ` ${row.label}` : '';
  return `min ${String(row.minute).padStart(2)}/${minutes - 1}${label.padEnd(18).slice(0, 18)} ${TRAFFIC_CLASSES.map((c) => cell(c, row.traffic[c])).join(' | ')}`;
}

function progressLine(p: Progress): string {
  const width = 20;
  const filled = Math.round(p.fraction * width);
  return `  min ${p.minute}/${p.minutes - 1} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(p.fraction * 100).toFixed(0).padStart(3)}%  sent ${p.sent}  in flight ${p.inFlight}`;
}

/** The summary table printed at the end. */
export function summaryTable(rows: MinuteRow[]): string {
  const header = `minute  ${TRAFFIC_CLASSES.map((c) => `${c.padEnd(8)} target  achieved  reqs   err%   p50 ms   p95 ms   p99 ms`).join(' | ')}`;
  const lines = rows.map(
    (row) =>
      `${String(row.minute).padStart(6)}  ${TRAFFIC_CLASSES.map((c) => {
        const t = row.traffic[c];
        return `${''.padEnd(8)} ${t.targetRps.toFixed(2).padStart(6)}  ${t.achievedRps.toFixed(2).padStart(8)}  ${String(t.requests).padStart(4)}  ${(t.errorRate * 100).toFixed(1).padStart(5)}  ${t.p50Ms.toFixed(0).padStart(7)}  ${t.p95Ms.toFixed(0).padStart(7)}  ${t.p99Ms.toFixed(0).padStart(7)}`;
      }).join(' | ')}`,
  );
  return [header, ...lines].join('\n');
}

/**
 * Writes minute lines, and on a terminal a progress line that rewrites itself; on a
 * pipe or in CI only plain lines.
 */
export class LiveView {
  private timer?: NodeJS.Timeout;
  private readonly tty: boolean;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly progress: () => Progress,
  ) {
    this.tty = Boolean(out.isTTY) && !process.env.CI;
  }

  start(): void {
    if (!this.tty) return;
    this.timer = setInterval(() => this.out.write(`\r\x1b[K${progressLine(this.progress())}`), 250);
  }

  line(text: string): void {
    this.out.write(this.tty ? `\r\x1b[K${text}\n` : `${text}\n`);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.tty) this.out.write('\r\x1b[K');
  }
}
