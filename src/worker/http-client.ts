import { receiveMessageOnPort } from 'node:worker_threads';
import type { CallContext } from '@extism/extism';
import { PolicydError } from '../errors/policyd-error.js';
import { isHostAllowed, notAllowedText } from '../net/allowed-hosts.js';
import type { HttpBridgeRequest, HttpBridgeResponse, HttpChannel } from './protocol.js';

interface GuestRequest {
  url?: unknown;
  method?: unknown;
  headers?: unknown;
}

function readRequest(cp: CallContext, offset: bigint): HttpBridgeRequest {
  let req: GuestRequest;
  try {
    req = JSON.parse(cp.read(offset)?.text() ?? '') as GuestRequest;
  } catch {
    throw new Error('http_request: the request is not JSON {"url","method","headers"}');
  }
  if (typeof req.url !== 'string') throw new Error('http_request: the request has no "url"');
  const headers: Record<string, string> = {};
  if (req.headers && typeof req.headers === 'object') {
    for (const [k, v] of Object.entries(req.headers)) headers[k] = String(v);
  }
  return { url: req.url, method: typeof req.method === 'string' ? req.method.toUpperCase() : 'GET', headers };
}

function awaitAnswer(channel: HttpChannel, flag: Int32Array): HttpBridgeResponse {
  if (Atomics.wait(flag, 0, 0, channel.timeoutMs) === 'timed-out') {
    throw new Error('http_request: context deadline exceeded');
  }
  // The answer is posted before the flag flips; the loop only covers delivery lagging the notify.
  for (let spins = 0; spins < 1000; spins++) {
    const received = receiveMessageOnPort(channel.port);
    if (received) return received.message as HttpBridgeResponse;
    Atomics.wait(flag, 0, 1, 1);
  }
  throw new Error('http_request: no answer from the host');
}

/**
 * Extism's `http_request`/`http_status_code`/`http_headers` for foreground plugins: the worker checks
 * the allow-list, then blocks while the main thread performs the request (net/http-bridge.ts), as
 * Node has no JSPI to suspend the guest. Response headers stay off, as in Chainloop.
 */
export function httpFunctions(channel: HttpChannel) {
  const flag = new Int32Array(channel.flag);
  let status = 0;
  return {
    http_request(cp: CallContext, requestOffset: bigint, bodyOffset: bigint): bigint {
      const request = readRequest(cp, requestOffset);
      if (!isHostAllowed(request.url, channel.allowedHosts)) throw new Error(notAllowedText(request.url));
      if (bodyOffset !== 0n) request.body = cp.read(bodyOffset)?.bytes().slice();
      Atomics.store(flag, 0, 0);
      channel.port.postMessage(request);
      const answer = awaitAnswer(channel, flag);
      if (!answer.ok) throw PolicydError.from(answer.error);
      status = answer.status;
      return answer.body.byteLength > 0 ? cp.store(answer.body) : 0n;
    },
    http_status_code(): number {
      return status;
    },
    http_headers(): bigint {
      return 0n;
    },
  };
}
