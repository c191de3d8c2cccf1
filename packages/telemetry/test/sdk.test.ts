/**
 * How the lab's SDK setup reads the standard OTEL_* exporter variables (the same
 * defaults as @opentelemetry/sdk-node); the end-to-end tests show the signals arrive.
 */
import { describe, expect, it } from 'vitest';
import { type DiagSink, exporterNames, otlpProtocol, quietDiagLogger } from '../src/sdk.js';

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

describe('the diag logger without a collector', () => {
  function recorder() {
    const lines: string[] = [];
    const line = (level: string) => (m: string) => {
      lines.push(`${level}: ${m}`);
    };
    const sink: DiagSink = { error: line('error'), warn: line('warn'), info: line('info'), debug: line('debug'), verbose: line('verbose') };
    return { lines, sink };
  }

  it('says a repeated export failure once per window, then how many it held back', () => {
    const { lines, sink } = recorder();
    let t = 0;
    const logger = quietDiagLogger(sink, 60_000, () => t);
    const failure = new Error('getaddrinfo ENOTFOUND otel-collector');
    for (let i = 0; i < 10; i++, t += 5_000) logger.error('{"stack":"OTLPExporterError: Request Timeout"}', failure);
    expect(lines).toEqual(['error: {"stack":"OTLPExporterError: Request Timeout"}']);
    t = 61_000;
    logger.error('{"stack":"OTLPExporterError: Request Timeout"}', failure);
    expect(lines.at(-1)).toBe('error: {"stack":"OTLPExporterError: Request Timeout"} (and 9 more like it in the last 60 s)');
  });

  it('keeps different failures apart, treats numbers as alike, and lets info through untouched', () => {
    const { lines, sink } = recorder();
    const logger = quietDiagLogger(sink, 60_000, () => 0);
    logger.warn('export of 12 spans failed');
    logger.warn('export of 40 spans failed');
    logger.error('export of 12 spans failed');
    logger.info('started');
    logger.info('started');
    expect(lines).toEqual(['warn: export of 12 spans failed', 'error: export of 12 spans failed', 'info: started', 'info: started']);
  });
});
