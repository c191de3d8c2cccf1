import { SERVICE_PORTS, type ServiceName } from '@bfl/contract';
import type Koa from 'koa';
import type { z } from 'zod';
import { commonEnv, env, loadConfig } from './config.js';
import { createLogger, type Logger } from './log.js';
import { listen, main, type Running, serve } from './server.js';

const base = (name: ServiceName) => ({ PORT: env.port(SERVICE_PORTS[name]), ...commonEnv });
type BaseShape = ReturnType<typeof base>;

type BaseConfig = z.infer<z.ZodObject<BaseShape>>;
export type ServiceConfig<S extends z.ZodRawShape> = z.infer<z.ZodObject<S>> & BaseConfig;

export interface Built {
  app: Koa;
  /** Closes pools and clients; called after the last request has drained. */
  close?: () => Promise<void>;
}

export interface ServiceDefinition<S extends z.ZodRawShape> {
  name: ServiceName;
  /** The service's own environment variables (PORT, LOG_LEVEL, LATENCY_SCALE, ... are added). */
  config: S;
  create: (config: ServiceConfig<S>, logger: Logger) => Built | Promise<Built>;
}

/** Declares a service: its name, its environment, and how to build its app. */
export function defineService<S extends z.ZodRawShape>(definition: ServiceDefinition<S>) {
  return definition;
}

function configure<S extends z.ZodRawShape>(definition: ServiceDefinition<S>, source: NodeJS.ProcessEnv) {
  const shape = { ...definition.config, ...base(definition.name) };
  return loadConfig(shape, source) as unknown as ServiceConfig<S>;
}

/** The process entry point: configuration from the environment, serve until SIGTERM. */
export function runService<S extends z.ZodRawShape>(definition: ServiceDefinition<S>): void {
  main(definition.name, async () => {
    const config = configure(definition, process.env);
    const logger = createLogger(definition.name, config.LOG_LEVEL);
    const { app, close } = await definition.create(config, logger);
    await serve({
      name: definition.name,
      port: config.PORT,
      app,
      logger,
      onShutdown: close,
      graceMs: config.SHUTDOWN_GRACE_MS,
    });
  });
}

export interface Started extends Running {
  url: string;
}

/**
 * Starts a service in this process on an ephemeral port (tests, benchmarks). `overrides`
 * are laid over process.env; PORT defaults to 0.
 */
export async function startService<S extends z.ZodRawShape>(
  definition: ServiceDefinition<S>,
  overrides: Record<string, string | undefined> = {},
): Promise<Started> {
  const config = configure(definition, { ...process.env, PORT: '0', ...overrides });
  const logger = createLogger(definition.name, config.LOG_LEVEL);
  const { app, close } = await definition.create(config, logger);
  const running = await listen({
    name: definition.name,
    port: config.PORT,
    host: '127.0.0.1',
    app,
    logger,
    onShutdown: close,
    graceMs: 1_000,
  });
  return { ...running, url: `http://127.0.0.1:${running.port}` };
}
