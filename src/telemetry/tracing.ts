/**
 * OpenTelemetry traces: one SERVER span per RPC continuing the caller's W3C `traceparent`, and under
 * an evaluation, spans for each script's queue wait, instantiation and guest execution (timed in the
 * worker) and for every guest HTTP and discover call (made on the main thread). Exported over
 * OTLP/HTTP when configured; without it there is no tracer and nothing is recorded.
 *
 * The provider is the daemon's own, not registered globally: a library user embedding the engine
 * keeps its own OpenTelemetry set-up, and tests run several daemons in one process.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { Metadata } from '@grpc/grpc-js';

export interface TracingOptions {
  /** OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces; empty: the exporter's OTEL_EXPORTER_OTLP_* environment. */
  endpoint: string;
  /** Share of new traces recorded; a caller's sampling decision is followed. */
  sampleRatio: number;
  serviceVersion: string;
}

export interface Tracing {
  tracer: Tracer;
  /** Exports what is buffered, then stops. */
  shutdown(): Promise<void>;
}

export function startTracing(options: TracingOptions): Tracing {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: 'wasm-policyd', [ATTR_SERVICE_VERSION]: options.serviceVersion }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(options.sampleRatio) }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter(options.endpoint ? { url: options.endpoint } : {}))],
  });
  return { tracer: provider.getTracer('wasm-policyd', options.serviceVersion), shutdown: () => provider.shutdown() };
}

const propagator = new W3CTraceContextPropagator();

/** The caller's trace context from `traceparent`/`tracestate` metadata (none: a new trace). */
export function contextFromMetadata(metadata: Metadata): Context {
  return propagator.extract(ROOT_CONTEXT, metadata, {
    get: (m, key) => m.get(key).map(String),
    keys: (m) => Object.keys(m.getMap()),
  });
}

/** A child span of `parent` that already happened, from its recorded start and end. */
export function recordSpan(tracer: Tracer, parent: Context, name: string, start: number, end: number): void {
  tracer.startSpan(name, { startTime: start }, parent).end(end);
}

/** Ends `span` as failed with `err`'s message, or as ok. */
export function endSpan(span: Span, err?: unknown): void {
  if (err !== undefined) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
    const reason = (err as { reason?: unknown }).reason;
    if (typeof reason === 'string') span.setAttribute('policyd.error.reason', reason);
  }
  span.end();
}

export { ROOT_CONTEXT, SpanKind, trace, type Context, type Span, type Tracer };
