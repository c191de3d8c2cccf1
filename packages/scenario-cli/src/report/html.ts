import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Report } from '@bfl/load-generator/report';
import { TRAFFIC_CLASSES } from '@bfl/load-generator/scenario';

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

/** JSON that is safe inside a <script> element. */
const scriptJson = (value: unknown) => JSON.stringify(value).replace(/</g, '\\u003c');

const pct = (v: number) => `${(v * 100).toFixed(1)}%`;

/** `cart 12, checkout 3`: error answers by the service that failed, most first. */
const byService = (counts: Record<string, number>) =>
  Object.entries(counts)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([service, n]) => `${escapeHtml(service)} ${n}`)
    .join(', ');

function minuteTable(report: Report): string {
  const head = `<tr><th rowspan="2">minute</th><th rowspan="2">label</th>${TRAFFIC_CLASSES.map((c) => `<th colspan="6">${c}</th>`).join('')}</tr>
<tr>${TRAFFIC_CLASSES.map(() => '<th>target rps</th><th>achieved</th><th>requests</th><th>errors</th><th>failed in</th><th>p95 ms</th>').join('')}</tr>`;
  const rows = report.minutes
    .map((m) => {
      const cells = TRAFFIC_CLASSES.map((c) => {
        const t = m.traffic[c];
        return `<td>${t.targetRps}</td><td>${t.achievedRps}</td><td>${t.requests}</td><td>${pct(t.errorRate)}</td><td class="services">${byService(t.errorsByService)}</td><td>${t.p95Ms}</td>`;
      }).join('');
      return `<tr><td>${m.minute}</td><td>${escapeHtml(m.label)}</td>${cells}</tr>`;
    })
    .join('\n');
  return `<table class="minutes">${head}\n${rows}</table>`;
}

function expectationList(report: Report): string {
  return `<ul class="expectations">${report.expectations
    .map(
      (e) =>
        `<li class="${e.ok ? 'pass' : 'fail'}"><b>${e.ok ? 'PASS' : 'FAIL'}</b> ${escapeHtml(e.name)} — actual ${e.actual ?? 'n/a'}${
          e.minute !== null ? ` (minute ${e.minute})` : ''
        }; expected ${escapeHtml(e.expected)}</li>`,
    )
    .join('\n')}</ul>`;
}

/** The alerts' verdicts, beside the bands drawn on the error-rate chart. */
function alertTable(report: Report): string {
  if (!report.alerts) return '';
  const rows = report.alerts
    .map((a) => {
      const expected =
        a.expected.firingBy === null ? 'never fires' : `firing by ${a.expected.firingBy}, resolved by ${a.expected.resolvedBy ?? '-'}`;
      const fired = a.firing.map((f) => `${f.from.toFixed(1)}–${f.to.toFixed(1)}`).join(', ') || 'never';
      return `<tr class="${a.ok ? 'pass' : 'fail'}"><td>${a.ok ? 'PASS' : 'FAIL'}</td><td class="name">${escapeHtml(a.name)}</td><td>${escapeHtml(expected)}</td><td>${
        a.firstFiringMinute ?? '-'
      }</td><td>${a.resolvedMinute ?? '-'}</td><td>${fired}</td><td class="name">${escapeHtml(a.problems.join('; '))}</td></tr>`;
    })
    .join('\n');
  return `<h2>Alerts</h2>
<p>Read from Prometheus during the run; the bands on the error-rate chart show when each alert was firing (demo minutes).</p>
<table class="alerts"><tr><th></th><th>alert</th><th>expected</th><th>first firing</th><th>resolved</th><th>firing (minutes)</th><th>problems</th></tr>
${rows}</table>`;
}

/** One failed checkout trace as a waterfall: a bar per span, offset by its start. */
function waterfallHtml(example: NonNullable<Report['traces']>['example']): string {
  if (!example) return '';
  const total = Math.max(...example.rows.map((r) => r.startMs + r.durationMs), 1);
  const rows = example.rows
    .map((r) => {
      const left = ((r.startMs / total) * 100).toFixed(2);
      const width = Math.max(0.3, (r.durationMs / total) * 100).toFixed(2);
      return `<tr class="${r.error ? 'error' : ''}"><td class="svc">${escapeHtml(r.service)}</td><td class="span" style="padding-left:${r.depth * 12 + 4}px">${escapeHtml(r.name)}${
        r.detail ? ` <em>${escapeHtml(r.detail)}</em>` : ''
      }</td><td class="ms">${r.durationMs.toFixed(1)} ms</td><td class="bar"><div style="margin-left:${left}%;width:${width}%"></div></td></tr>`;
    })
    .join('\n');
  return `<h2>A failed checkout, span by span</h2>
<p>Trace <code>${escapeHtml(example.traceId)}</code> (${example.rows.length} spans, ${total.toFixed(0)} ms). Red: the span ended in error.</p>
<table class="waterfall"><tr><th>service</th><th>span</th><th>duration</th><th>timeline</th></tr>
${rows}</table>`;
}

/** The report as one self-contained HTML page (Chart.js inlined, no network needed). */
function renderHtml(report: Report): string {
  // chart.js exports no subpath for its browser bundle; it sits beside the CommonJS entry.
  const chartJs = readFileSync(path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js'), 'utf8');
  const title = `${report.scenario} — ${report.ok ? 'PASS' : 'FAIL'}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1b1f24; }
  h1 { font-size: 20px; } .verdict.pass { color: #1a7f37; } .verdict.fail { color: #cf222e; }
  .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; }
  .chart { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px; height: 300px; }
  table { border-collapse: collapse; margin-top: 16px; } td, th { border: 1px solid #d0d7de; padding: 2px 8px; text-align: right; }
  td.services { text-align: left; font-size: 12px; }
  .expectations li.pass { color: #1a7f37; } .expectations li.fail { color: #cf222e; }
  table.alerts tr.pass td:first-child { color: #1a7f37; } table.alerts tr.fail td:first-child { color: #cf222e; } table.alerts td.name { text-align: left; }
  table.waterfall { width: 100%; } table.waterfall td { text-align: left; white-space: nowrap; }
  table.waterfall td.bar { width: 50%; } table.waterfall td.bar div { height: 10px; background: #0969da; border-radius: 2px; }
  table.waterfall tr.error td.bar div { background: #cf222e; } table.waterfall tr.error td.span { color: #cf222e; }
</style>
</head>
<body>
<h1>Black Friday Lab — scenario <code>${escapeHtml(report.scenario)}</code> <span class="verdict ${report.ok ? 'pass' : 'fail'}">${report.ok ? 'PASS' : 'FAIL'}</span></h1>
<p>Target ${escapeHtml(report.target)}, one demo minute = ${report.minuteMs / 1000} s, rate scale ${report.rateScale},
started ${escapeHtml(report.startedAt)}, finished ${escapeHtml(report.finishedAt)}${report.stopped ? ' (stopped early)' : ''}.</p>
<div class="charts">
  <div class="chart"><canvas id="chart-rate" aria-label="request rate per minute"></canvas></div>
  <div class="chart"><canvas id="chart-errors" aria-label="error rate per minute"></canvas></div>
  <div class="chart"><canvas id="chart-p95" aria-label="p95 latency per minute"></canvas></div>
</div>
${alertTable(report)}
<h2>Expectations</h2>
${expectationList(report)}
<h2>Minutes</h2>
${minuteTable(report)}
${waterfallHtml(report.traces?.example)}
<script>${chartJs}</script>
<script id="report-data" type="application/json">${scriptJson(report)}</script>
<script>
(function () {
  var report = JSON.parse(document.getElementById('report-data').textContent);
  var labels = report.minutes.map(function (m) { return 'min ' + m.minute; });
  var colors = { baseline: '#0969da', demo: '#cf222e' };
  function series(cls, pick) { return report.minutes.map(function (m) { return pick(m.traffic[cls]); }); }
  // When each alert fired, as a band per alert along the top of the error-rate chart,
  // on the chart's own minute axis (a fraction of a minute is a fraction of the step).
  var alertColors = ['#8250df', '#bf8700', '#cf222e', '#0969da', '#1a7f37', '#57606a'];
  var alertBands = {
    id: 'alertBands',
    afterDatasetsDraw: function (chart) {
      var alerts = report.alerts || [];
      var x = chart.scales.x, area = chart.chartArea, ctx = chart.ctx, drawn = 0;
      alerts.forEach(function (a, i) {
        var y = area.top + 4 + i * 14, color = alertColors[i % alertColors.length];
        ctx.save();
        ctx.font = '10px system-ui, sans-serif';
        ctx.fillStyle = color;
        a.firing.forEach(function (f) {
          var from = x.getPixelForValue(f.from), to = Math.max(from + 2, x.getPixelForValue(f.to));
          ctx.globalAlpha = 0.35;
          ctx.fillRect(from, y, to - from, 10);
          ctx.globalAlpha = 1;
          drawn++;
        });
        ctx.fillText(a.name + (a.firing.length ? '' : ' (never fired)'), area.left + 4, y + 9);
        ctx.restore();
      });
      document.body.setAttribute('data-alert-bands', String(drawn));
    }
  };
  function chart(id, title, datasets, yTitle, plugins) {
    return new Chart(document.getElementById(id), {
      type: 'line',
      data: { labels: labels, datasets: datasets },
      plugins: plugins || [],
      options: { animation: false, maintainAspectRatio: false, plugins: { title: { display: true, text: title } },
                 scales: { y: { beginAtZero: true, title: { display: true, text: yTitle } } } }
    });
  }
  var classes = ['baseline', 'demo'];
  window.labCharts = [
    chart('chart-rate', 'Request rate per minute', classes.flatMap(function (c) { return [
      { label: c + ' achieved', data: series(c, function (t) { return t.achievedRps; }), borderColor: colors[c] },
      { label: c + ' target', data: series(c, function (t) { return t.targetRps; }), borderColor: colors[c], borderDash: [4, 4] }
    ]; }), 'requests / s'),
    chart('chart-errors', report.alerts ? 'Error rate per minute, and when each alert fired' : 'Error rate per minute', classes.map(function (c) {
      return { label: c, data: series(c, function (t) { return t.errorRate * 100; }), borderColor: colors[c] };
    }), '% of requests', report.alerts ? [alertBands] : []),
    chart('chart-p95', 'p95 latency per minute', classes.map(function (c) {
      return { label: c, data: series(c, function (t) { return t.p95Ms; }), borderColor: colors[c] };
    }), 'ms')
  ];
  document.body.setAttribute('data-charts-ready', String(window.labCharts.length));
})();
</script>
</body>
</html>
`;
}

/** Writes DIR/index.html; returns its path. */
export function writeHtml(report: Report, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'index.html');
  writeFileSync(file, renderHtml(report));
  return file;
}
