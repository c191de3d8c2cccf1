/**
 * @bfl/kit: what a service needs to serve requests, at runtime.
 *
 * Belongs here: the Koa app with its error handling and health routes (app.ts), the
 * server and the service lifecycle (server.ts, service.ts), configuration (config.ts),
 * the HTTP client with deadlines (http-client.ts, deadline.ts), errors, logs,
 * PostgreSQL (./db), Redis (./redis), the scenario state the services read (./scenario-state),
 * the latency model and request validation.
 *
 * Does not belong here: what services agree on (@bfl/contract), telemetry set-up
 * (@bfl/telemetry), or any developer tool (the lab runner @bfl/lab, @bfl/traces,
 * @bfl/scenario-cli): those never enter a production image, and
 * test/architecture.test.ts fails when a runtime package imports one.
 */
export { z } from 'zod';
export { type AppOptions, annotate, createApp, errorResponse, isPoolTimeout, type ReadyCheck, unavailableDependency } from './app.js';
export { ConfigError, commonEnv, env, loadConfig } from './config.js';
export { currentDeadline, DEADLINE_HEADER, parseDeadline, remainingBudget, withDeadline } from './deadline.js';
export { badRequest, errorCause, HttpError, notFound, unprocessable } from './errors.js';
export { DownstreamError, type RequestOptions, ServiceClient } from './http-client.js';
export { type DelayProfile, LatencyModel, parseProfiles, sampleDelay } from './latency.js';
export { createLogger, type Logger } from './log.js';
export { listen, main, type Running, type ServeOptions, serve } from './server.js';
export {
  type Built,
  defineService,
  runService,
  type ServiceConfig,
  type ServiceDefinition,
  type Started,
  startService,
} from './service.js';
export { validate, validateBody } from './validate.js';
