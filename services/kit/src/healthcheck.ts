/**
 * `node healthcheck.js http://localhost:8013/health`: exit 0 when the URL answers 2xx
 * within 2 s, 1 otherwise. The images' health check: no curl needed inside.
 */
const url = process.argv[2];
if (!url) {
  process.stderr.write('usage: node healthcheck.js URL\n');
  process.exit(2);
}
fetch(url, { signal: AbortSignal.timeout(2_000) }).then(
  (response) => process.exit(response.ok ? 0 : 1),
  (error: Error) => {
    process.stderr.write(`healthcheck: ${url}: ${error.message}\n`);
    process.exit(1);
  },
);
