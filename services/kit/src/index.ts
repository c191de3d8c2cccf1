export { z } from 'zod';
export { type AppOptions, annotate, createApp, errorResponse, isPoolTimeout, type ReadyCheck, unavailableDependency } from './app.js';
export { ConfigError, commonEnv, env, loadConfig } from './config.js';
export { currentDeadline, DEADLINE_HEADER, parseDeadline, remainingBudget, withDeadline } from './deadline.js';
export {
  CATEGORIES,
  type Category,
  CURRENCIES,
  type Currency,
  ID_PATTERN,
  storyMinute,
  storyTrafficType,
  TRAFFIC_TYPES,
  type TrafficType,
} from './domain.js';
export { badRequest, HttpError, notFound, unprocessable } from './errors.js';
export { DownstreamError, type RequestOptions, ServiceClient } from './http-client.js';
export { KNOBS, type KnobName, KnobValues, knobProblem, knobRange, statementTimeoutFor } from './knob-ranges.js';
export { type DelayProfile, LatencyModel, parseProfiles, sampleDelay } from './latency.js';
export { createLogger, type Logger } from './log.js';
export { labMeter, observePool } from './metrics.js';
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
export {
  DEFAULT_DATABASE_URL,
  DEFAULT_REDIS_URL,
  defaultUrl,
  SERVICE_PORTS,
  type ServiceName,
  SHOP_SERVICES,
  STORY_POOLS,
  scaledPoolEnv,
  urlVariable,
} from './services.js';
export { shutdownTelemetry, telemetryStarted, telemetryWanted } from './telemetry-control.js';
export { untraced } from './untraced.js';
export { validate, validateBody } from './validate.js';
