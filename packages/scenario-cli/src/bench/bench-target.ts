/**
 * A trivial route for the per-request cost benchmark: `node bench-target.js raw|koa`
 * serves GET /ping on PORT with a bare node:http server or with the kit's Koa app
 * (preload @bfl/telemetry/preload for the variant with telemetry).
 */
import { createServer } from 'node:http';
import { createApp, createLogger, listen } from '@bfl/kit';

const variant = process.argv[2];
const port = Number(process.env.PORT ?? 0);

async function main(): Promise<void> {
  if (variant === 'raw') {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    server.listen(port, '127.0.0.1', () => process.stdout.write(`listening ${(server.address() as { port: number }).port}\n`));
    return;
  }
  if (variant !== 'koa') throw new Error('usage: bench-target.js raw|koa');
  const logger = createLogger('bench', 'silent');
  const app = createApp({
    name: 'bench',
    logger,
    routes(router) {
      router.get('/ping', (ctx) => {
        ctx.body = { ok: true };
      });
    },
  });
  const running = await listen({ name: 'bench', port, host: '127.0.0.1', app, logger });
  process.stdout.write(`listening ${running.port}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench-target: ${(error as Error).message}\n`);
  process.exit(1);
});
