import type { CallContext } from '@extism/extism';
import { httpForbiddenMessage, unknownErrorMessage } from '../errors/chainloop-messages.js';
import { PolicydError } from '../errors/policyd-error.js';
import { isHostAllowed } from '../net/allowed-hosts.js';
import type { GuestHttpRequest } from '../net/http-fetch.js';
import { callHost, chargeHostCall } from './host-call.js';
import type { Evaluation } from './instances.js';

interface GuestRequest {
  url?: unknown;
  method?: unknown;
  headers?: unknown;
}

function readRequest(cp: CallContext, offset: bigint): GuestHttpRequest {
  let req: GuestRequest;
  try {
    req = JSON.parse(cp.read(offset)?.text() ?? '') as GuestRequest;
  } catch {
    throw new PolicydError('POLICY_ERROR', unknownErrorMessage('http_request: the request is not JSON {"url","method","headers"}'));
  }
  if (typeof req.url !== 'string') throw new PolicydError('POLICY_ERROR', unknownErrorMessage('http_request: the request has no "url"'));
  const headers: Record<string, string> = {};
  if (req.headers && typeof req.headers === 'object') {
    for (const [k, v] of Object.entries(req.headers)) headers[k] = String(v);
  }
  return { url: req.url, method: typeof req.method === 'string' ? req.method.toUpperCase() : 'GET', headers };
}

/**
 * Extism's `http_request`/`http_status_code`/`http_headers` for foreground plugins. A host outside
 * the allow-list traps the guest with a typed HTTP_FORBIDDEN carrying Chainloop's message (Chainloop
 * gets there by parsing go-sdk's panic text); response headers stay off.
 */
export function httpFunctions(evaluationOf: (cp: CallContext) => Evaluation | null) {
  return {
    http_request(cp: CallContext, requestOffset: bigint, bodyOffset: bigint): bigint {
      const request = readRequest(cp, requestOffset);
      const evaluation = evaluationOf(cp);
      const channel = evaluation?.task.host;
      if (!evaluation || !channel || !isHostAllowed(request.url, evaluation.task.allowedHosts))
        throw new PolicydError('HTTP_FORBIDDEN', httpForbiddenMessage(request.url));
      chargeHostCall(evaluation);
      if (bodyOffset !== 0n) request.body = cp.read(bodyOffset)?.bytes().slice();
      const answer = callHost(channel, { op: 'http', request });
      evaluation.httpStatus = answer.status;
      return answer.body && answer.body.byteLength > 0 ? cp.store(answer.body) : 0n;
    },
    http_status_code(cp: CallContext): number {
      return evaluationOf(cp)?.httpStatus ?? 0;
    },
    http_headers(): bigint {
      return 0n;
    },
  };
}
