/**
 * How the lab's SDK setup reads the standard OTEL_* exporter variables (the same
 * defaults as @opentelemetry/sdk-node); the end-to-end tests show the signals arrive.
 */
import { describe, expect, it } from 'vitest';
import { exporterNames, otlpProtocol } from '../src/otel-sdk.js';

describe('exporter selection from the environment', () => {
  it('exports every signal over OTLP unless told otherwise', () => {
    for (const signal of ['traces', 'metrics', 'logs'] as const) expect(exporterNames(signal, {})).toEqual(['otlp']);
  });

  it('reads each signal its own variable: lists, duplicates, none', () => {
    const env = { OTEL_TRACES_EXPORTER: 'otlp, console,otlp', OTEL_METRICS_EXPORTER: 'none', OTEL_LOGS_EXPORTER: 'console' };
    expect(exporterNames('traces', env)).toEqual(['otlp', 'console']);
    expect(exporterNames('metrics', env)).toEqual([]);
    expect(exporterNames('logs', env)).toEqual(['console']);
    expect(exporterNames('traces', { OTEL_TRACES_EXPORTER: 'otlp,none' })).toEqual([]);
  });

  it('uses http/protobuf by default, http/json when asked, per signal first', () => {
    expect(otlpProtocol('traces', {})).toBe('http/protobuf');
    expect(otlpProtocol('traces', { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' })).toBe('http/json');
    const env = { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'http/protobuf' };
    expect(otlpProtocol('logs', env)).toBe('http/protobuf');
    expect(otlpProtocol('metrics', env)).toBe('http/json');
  });

  it('falls back to http/protobuf for gRPC, which the lab does not bundle', () => {
    expect(otlpProtocol('traces', { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toBe('http/protobuf');
  });
});
