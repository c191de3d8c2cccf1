/**
 * OTLP protobuf messages, for the lab's own receivers and senders: trace exports (the
 * services' default protocol) for the runner's receiver, and traces, metrics and logs for
 * the Coralogix tools (the pre-demo check and the stand-in ingress of the contract test).
 * The schema is the part of opentelemetry-proto's common, resource, trace, metrics and logs
 * messages these read and write, with the official field numbers.
 */
import protobuf from 'protobufjs';

const schema = {
  nested: {
    ExportTraceServiceRequest: { fields: { resourceSpans: { rule: 'repeated', type: 'ResourceSpans', id: 1 } } },
    ResourceSpans: {
      fields: { resource: { type: 'Resource', id: 1 }, scopeSpans: { rule: 'repeated', type: 'ScopeSpans', id: 2 } },
    },
    Resource: { fields: { attributes: { rule: 'repeated', type: 'KeyValue', id: 1 } } },
    ScopeSpans: { fields: { scope: { type: 'InstrumentationScope', id: 1 }, spans: { rule: 'repeated', type: 'Span', id: 2 } } },
    InstrumentationScope: { fields: { name: { type: 'string', id: 1 }, version: { type: 'string', id: 2 } } },
    Span: {
      fields: {
        traceId: { type: 'bytes', id: 1 },
        spanId: { type: 'bytes', id: 2 },
        parentSpanId: { type: 'bytes', id: 4 },
        name: { type: 'string', id: 5 },
        kind: { type: 'int32', id: 6 },
        startTimeUnixNano: { type: 'fixed64', id: 7 },
        endTimeUnixNano: { type: 'fixed64', id: 8 },
        attributes: { rule: 'repeated', type: 'KeyValue', id: 9 },
        status: { type: 'Status', id: 15 },
      },
    },
    Status: { fields: { message: { type: 'string', id: 2 }, code: { type: 'int32', id: 3 } } },
    KeyValue: { fields: { key: { type: 'string', id: 1 }, value: { type: 'AnyValue', id: 2 } } },
    AnyValue: {
      oneofs: { value: { oneof: ['stringValue', 'boolValue', 'intValue', 'doubleValue', 'arrayValue', 'kvlistValue', 'bytesValue'] } },
      fields: {
        stringValue: { type: 'string', id: 1 },
        boolValue: { type: 'bool', id: 2 },
        intValue: { type: 'int64', id: 3 },
        doubleValue: { type: 'double', id: 4 },
        arrayValue: { type: 'ArrayValue', id: 5 },
        kvlistValue: { type: 'KeyValueList', id: 6 },
        bytesValue: { type: 'bytes', id: 7 },
      },
    },
    ArrayValue: { fields: { values: { rule: 'repeated', type: 'AnyValue', id: 1 } } },
    KeyValueList: { fields: { values: { rule: 'repeated', type: 'KeyValue', id: 1 } } },
    // opentelemetry/proto/metrics/v1 (the data points' values are left out where no reader needs them)
    ExportMetricsServiceRequest: { fields: { resourceMetrics: { rule: 'repeated', type: 'ResourceMetrics', id: 1 } } },
    ResourceMetrics: {
      fields: { resource: { type: 'Resource', id: 1 }, scopeMetrics: { rule: 'repeated', type: 'ScopeMetrics', id: 2 } },
    },
    ScopeMetrics: { fields: { scope: { type: 'InstrumentationScope', id: 1 }, metrics: { rule: 'repeated', type: 'Metric', id: 2 } } },
    Metric: {
      oneofs: { data: { oneof: ['gauge', 'sum', 'histogram', 'exponentialHistogram', 'summary'] } },
      fields: {
        name: { type: 'string', id: 1 },
        description: { type: 'string', id: 2 },
        unit: { type: 'string', id: 3 },
        gauge: { type: 'Gauge', id: 5 },
        sum: { type: 'Sum', id: 7 },
        histogram: { type: 'Histogram', id: 9 },
        exponentialHistogram: { type: 'ExponentialHistogram', id: 10 },
        summary: { type: 'Summary', id: 11 },
      },
    },
    Gauge: { fields: { dataPoints: { rule: 'repeated', type: 'NumberDataPoint', id: 1 } } },
    Sum: {
      fields: {
        dataPoints: { rule: 'repeated', type: 'NumberDataPoint', id: 1 },
        aggregationTemporality: { type: 'int32', id: 2 },
        isMonotonic: { type: 'bool', id: 3 },
      },
    },
    Histogram: {
      fields: { dataPoints: { rule: 'repeated', type: 'HistogramDataPoint', id: 1 }, aggregationTemporality: { type: 'int32', id: 2 } },
    },
    ExponentialHistogram: {
      fields: { dataPoints: { rule: 'repeated', type: 'AttributesOnlyPoint', id: 1 }, aggregationTemporality: { type: 'int32', id: 2 } },
    },
    Summary: { fields: { dataPoints: { rule: 'repeated', type: 'SummaryDataPoint', id: 1 } } },
    NumberDataPoint: {
      oneofs: { value: { oneof: ['asDouble', 'asInt'] } },
      fields: {
        attributes: { rule: 'repeated', type: 'KeyValue', id: 7 },
        startTimeUnixNano: { type: 'fixed64', id: 2 },
        timeUnixNano: { type: 'fixed64', id: 3 },
        asDouble: { type: 'double', id: 4 },
        asInt: { type: 'sfixed64', id: 6 },
      },
    },
    HistogramDataPoint: {
      fields: {
        attributes: { rule: 'repeated', type: 'KeyValue', id: 9 },
        startTimeUnixNano: { type: 'fixed64', id: 2 },
        timeUnixNano: { type: 'fixed64', id: 3 },
        count: { type: 'fixed64', id: 4 },
        sum: { type: 'double', id: 5 },
        bucketCounts: { rule: 'repeated', type: 'fixed64', id: 6 },
        explicitBounds: { rule: 'repeated', type: 'double', id: 7 },
      },
    },
    SummaryDataPoint: { fields: { attributes: { rule: 'repeated', type: 'KeyValue', id: 7 } } },
    AttributesOnlyPoint: { fields: { attributes: { rule: 'repeated', type: 'KeyValue', id: 1 } } },
    // opentelemetry/proto/logs/v1
    ExportLogsServiceRequest: { fields: { resourceLogs: { rule: 'repeated', type: 'ResourceLogs', id: 1 } } },
    ResourceLogs: { fields: { resource: { type: 'Resource', id: 1 }, scopeLogs: { rule: 'repeated', type: 'ScopeLogs', id: 2 } } },
    ScopeLogs: { fields: { scope: { type: 'InstrumentationScope', id: 1 }, logRecords: { rule: 'repeated', type: 'LogRecord', id: 2 } } },
    LogRecord: {
      fields: {
        timeUnixNano: { type: 'fixed64', id: 1 },
        severityNumber: { type: 'int32', id: 2 },
        severityText: { type: 'string', id: 3 },
        body: { type: 'AnyValue', id: 5 },
        attributes: { rule: 'repeated', type: 'KeyValue', id: 6 },
        traceId: { type: 'bytes', id: 9 },
        spanId: { type: 'bytes', id: 10 },
        observedTimeUnixNano: { type: 'fixed64', id: 11 },
      },
    },
    // The three services' responses: an optional partial success.
    ExportPartialSuccess: { fields: { rejected: { type: 'int64', id: 1 }, errorMessage: { type: 'string', id: 2 } } },
    ExportServiceResponse: { fields: { partialSuccess: { type: 'ExportPartialSuccess', id: 1 } } },
  },
};

const root = protobuf.Root.fromJSON(schema);

/** The three OTLP signals: their gRPC method and their request message. */
export const OTLP_SIGNALS = {
  traces: { method: '/opentelemetry.proto.collector.trace.v1.TraceService/Export', request: 'ExportTraceServiceRequest' },
  metrics: { method: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export', request: 'ExportMetricsServiceRequest' },
  logs: { method: '/opentelemetry.proto.collector.logs.v1.LogsService/Export', request: 'ExportLogsServiceRequest' },
} as const;
export type OtlpSignal = keyof typeof OTLP_SIGNALS;

/** Decodes an export request of `signal` into plain objects (ids and bytes in base64, 64-bit numbers as strings). */
export function decodeOtlpRequest(signal: OtlpSignal, body: Uint8Array): Record<string, unknown> {
  const type = root.lookupType(OTLP_SIGNALS[signal].request);
  return type.toObject(type.decode(body), { longs: String, bytes: String, oneofs: false });
}

/** Encodes an export request of `signal` from plain objects in the decoded shape. */
export function encodeOtlpRequest(signal: OtlpSignal, message: Record<string, unknown>): Buffer {
  const type = root.lookupType(OTLP_SIGNALS[signal].request);
  // fromObject, not verify: it takes 64-bit numbers as decimal strings (as decode gives them).
  return Buffer.from(type.encode(type.fromObject(message)).finish());
}

/** Decodes an Export*ServiceResponse (the three are the same message). */
export function decodeOtlpResponse(body: Uint8Array): { partialSuccess?: { rejected?: string; errorMessage?: string } } {
  const type = root.lookupType('ExportServiceResponse');
  return type.toObject(type.decode(body), { longs: String });
}

/** Encodes an Export*ServiceResponse, with a partial success when something was rejected. */
export function encodeOtlpResponse(partial?: { rejected: number; errorMessage: string }): Buffer {
  const type = root.lookupType('ExportServiceResponse');
  return Buffer.from(type.encode(type.fromObject(partial ? { partialSuccess: partial } : {})).finish());
}

const Request = root.lookupType('ExportTraceServiceRequest');

const hex = (base64: unknown) => (typeof base64 === 'string' && base64 ? Buffer.from(base64, 'base64').toString('hex') : undefined);

/** Decodes an ExportTraceServiceRequest into the OTLP/JSON shape (ids in hex). */
export function decodeTraceRequest(body: Uint8Array): unknown {
  const message = Request.toObject(Request.decode(body), { longs: String, bytes: String, oneofs: false });
  for (const rs of (message.resourceSpans ?? []) as { scopeSpans?: { spans?: Record<string, unknown>[] }[] }[]) {
    for (const ss of rs.scopeSpans ?? []) {
      for (const span of ss.spans ?? []) {
        span.traceId = hex(span.traceId);
        span.spanId = hex(span.spanId);
        span.parentSpanId = hex(span.parentSpanId);
      }
    }
  }
  return message;
}
