import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { errorMessage, type ErrorData } from '../errors/policyd-error.js';
import { httpForbiddenMessage, unknownErrorMessage } from '../errors/chainloop-messages.js';
import type { HttpBridgeRequest, HttpBridgeResponse, HttpChannel } from '../worker/protocol.js';
import { isHostAllowed } from './allowed-hosts.js';

export interface HttpLimits {
  /** Chainloop's default (go-sdk MaxHttpResponseBytes) is 50 MiB. */
  maxResponseBytes: number;
  requestTimeoutMs: number;
  maxRedirects: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  maxResponseBytes: 50 * 1024 * 1024,
  requestTimeoutMs: 30_000,
  maxRedirects: 10,
};

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function failure(error: ErrorData): HttpBridgeResponse {
  return { ok: false, error };
}

async function readCapped(res: Response, max: number): Promise<Uint8Array | undefined> {
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > max) return undefined;
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (res.body) {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      total += chunk.byteLength;
      if (total > max) return undefined;
      chunks.push(chunk);
    }
  }
  return Buffer.concat(chunks);
}

/**
 * Performs a guest's request on the main thread. Unlike Chainloop, every redirect hop is checked
 * against the allow-list, so an allowed host cannot bounce a policy to a forbidden one.
 */
async function perform(req: HttpBridgeRequest, allowed: readonly string[], limits: HttpLimits): Promise<HttpBridgeResponse> {
  let { url, method } = req;
  let body = method === 'GET' || method === 'HEAD' ? undefined : req.body;
  for (let hop = 0; hop <= limits.maxRedirects; hop++) {
    if (!isHostAllowed(url, allowed)) return failure({ reason: 'HTTP_FORBIDDEN', message: httpForbiddenMessage(url) });
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: req.headers,
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(limits.requestTimeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause;
      return failure({
        reason: 'POLICY_ERROR',
        message: unknownErrorMessage(`http_request to '${url}' failed: ${errorMessage(cause ?? err)}`),
      });
    }
    const location = res.headers.get('location');
    if (REDIRECTS.has(res.status) && location) {
      await res.body?.cancel();
      url = new URL(location, url).href;
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
        method = 'GET';
        body = undefined;
      }
      continue;
    }
    const bytes = await readCapped(res, limits.maxResponseBytes);
    if (!bytes) {
      await res.body?.cancel().catch(() => {});
      return failure({
        reason: 'POLICY_ERROR',
        message: unknownErrorMessage(`HTTP response body from '${url}' exceeds the limit of ${limits.maxResponseBytes} bytes`),
      });
    }
    return { ok: true, status: res.status, body: bytes };
  }
  return failure({ reason: 'POLICY_ERROR', message: unknownErrorMessage(`too many redirects from '${req.url}'`) });
}

export interface OpenChannel {
  /** Goes to the worker inside the task; `channel.port` must be in the transfer list. */
  channel: HttpChannel;
  close(): void;
}

/** A channel a worker's `http_request` blocks on while this thread performs the request. */
export function openHttpChannel(allowedHosts: string[], limits: HttpLimits): OpenChannel {
  const { port1, port2 } = new MessageChannel();
  const flag = new SharedArrayBuffer(4);
  const view = new Int32Array(flag);
  port1.on('message', (req: HttpBridgeRequest) => {
    void perform(req, allowedHosts, limits).then((answer) => {
      port1.postMessage(answer);
      Atomics.store(view, 0, 1);
      Atomics.notify(view, 0);
    });
  });
  return {
    channel: { port: port2 as MessagePort, flag, allowedHosts, timeoutMs: limits.requestTimeoutMs + 1000 },
    close: () => port1.close(),
  };
}
