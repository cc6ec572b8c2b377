import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { DiscoveryBackend } from '../discovery/backend.js';
import { errorMessage } from '../errors/policyd-error.js';
import { garbage } from '../runtime/garbage-budget.js';
import { performGuestHttp, type HttpLimits } from '../net/http-fetch.js';
import type { HostChannel, HostRequest, HostResponse } from '../worker/protocol.js';
import { endSpan, type Context, type Tracer } from '../telemetry/tracing.js';

export interface HostServices {
  allowedHosts: string[];
  http: HttpLimits;
  discovery?: DiscoveryBackend;
  /** Aborts I/O still running when the evaluation ends. */
  signal: AbortSignal;
  /** Each call becomes a span under `context`. */
  trace?: { tracer: Tracer; context: Context };
}

export interface OpenChannel {
  /** Goes to the worker inside the task; `channel.port` must be in the transfer list. */
  channel: HostChannel;
  close(): void;
}

/** `answer`, in a span when the evaluation is traced. */
async function traced(req: HostRequest, services: HostServices): Promise<HostResponse> {
  if (!services.trace) return answer(req, services);
  const { tracer, context } = services.trace;
  const span =
    req.op === 'http'
      ? tracer.startSpan(
          'http_request',
          { attributes: { 'http.request.method': req.request.method, 'url.full': req.request.url } },
          context,
        )
      : tracer.startSpan('chainloop_discover', { attributes: { 'policyd.discover.digest': req.digest } }, context);
  const res = await answer(req, services);
  if (res.ok && req.op === 'http') span.setAttribute('http.response.status_code', res.status);
  endSpan(span, res.ok ? undefined : Object.assign(new Error(res.error.message), { reason: res.error.reason }));
  return res;
}

async function answer(req: HostRequest, services: HostServices): Promise<HostResponse> {
  try {
    if (req.op === 'http') return await performGuestHttp(req.request, services.allowedHosts, services.http, services.signal);
    const json = services.discovery ? await services.discovery.discover(req.digest, req.kind, services.signal) : null;
    return { ok: true, status: 0, body: json === null ? null : Buffer.from(json) };
  } catch (err) {
    return { ok: false, error: { reason: 'INTERNAL', message: `host call failed: ${errorMessage(err)}` } };
  }
}

/**
 * The main-thread side of the calls a guest makes that need async I/O (HTTP, discover): Node has no
 * JSPI to suspend a foreground plugin, so the worker posts the request and blocks on `flag` with
 * Atomics.wait until the answer is posted back here.
 */
export function openHostChannel(services: HostServices): OpenChannel {
  const { port1, port2 } = new MessageChannel();
  const flag = new SharedArrayBuffer(4);
  const view = new Int32Array(flag);
  port1.on('message', (req: HostRequest) => {
    void traced(req, services).then((res) => {
      if (res.ok) garbage.took(res.body?.byteLength ?? 0);
      port1.postMessage(res);
      Atomics.store(view, 0, 1);
      Atomics.notify(view, 0);
    });
  });
  return {
    channel: { port: port2 as MessagePort, flag, timeoutMs: services.http.requestTimeoutMs + 1000 },
    close: () => port1.close(),
  };
}
