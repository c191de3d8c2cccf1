/**
 * The preload entry: `node --require @bfl/telemetry/preload dist/main.js` starts telemetry
 * before the service's own code, so that the auto-instrumentations patch http, undici,
 * koa, pg, knex, ioredis and pino as they are first required.
 */
import { startTelemetry } from './boot.js';

startTelemetry();
