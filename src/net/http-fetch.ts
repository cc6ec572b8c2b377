import { Agent, fetch, type Response } from 'undici';
import { errorMessage, type ErrorData } from '../errors/policyd-error.js';
import { httpForbiddenMessage, unknownErrorMessage } from '../errors/chainloop-messages.js';
import { isHostAllowed } from './allowed-hosts.js';
import { PrivateAddressError, guardedLookup, isPrivateAddress } from './address-guard.js';

export interface HttpLimits {
  /** Chainloop's default (go-sdk MaxHttpResponseBytes) is 50 MiB. */
  maxResponseBytes: number;
  requestTimeoutMs: number;
  maxRedirects: number;
  /** Let policies reach loopback, private and link-local addresses (off: the SSRF guard is on). */
  allowPrivateNetwork: boolean;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  maxResponseBytes: 50 * 1024 * 1024,
  requestTimeoutMs: 30_000,
  maxRedirects: 10,
  allowPrivateNetwork: false,
};

export interface GuestHttpRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: Uint8Array;
}

export type GuestHttpResult = { ok: true; status: number; body: Uint8Array } | { ok: false; error: ErrorData };

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const guarded = new Agent({ connect: { lookup: guardedLookup as never } });
const open = new Agent();

/** The connection pool for a request: with the SSRF guard's DNS check, or without it. */
export function dispatcherFor(allowPrivateNetwork: boolean): Agent {
  return allowPrivateNetwork ? open : guarded;
}

function failure(error: ErrorData): GuestHttpResult {
  return { ok: false, error };
}

function privateRefusal(url: string, address: string): GuestHttpResult {
  return failure({ reason: 'HTTP_FORBIDDEN', message: httpForbiddenMessage(url, `resolves to the private address ${address}`) });
}

export async function readCapped(res: Response, max: number): Promise<Uint8Array | undefined> {
  if (Number(res.headers.get('content-length') ?? '0') > max) return undefined;
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (res.body) {
    for await (const chunk of res.body) {
      total += chunk.byteLength;
      if (total > max) return undefined;
      chunks.push(chunk);
    }
  }
  return Buffer.concat(chunks);
}

/**
 * Performs a guest's request. Unlike Chainloop, every redirect hop is checked against the allow-list
 * (an allowed host cannot bounce a policy to a forbidden one) and, unless private networks are
 * allowed, against private addresses after DNS resolution.
 */
export async function performGuestHttp(
  req: GuestHttpRequest,
  allowed: readonly string[],
  limits: HttpLimits,
  signal: AbortSignal,
): Promise<GuestHttpResult> {
  let { url, method } = req;
  let body = method === 'GET' || method === 'HEAD' ? undefined : req.body;
  for (let hop = 0; hop <= limits.maxRedirects; hop++) {
    if (!isHostAllowed(url, allowed)) return failure({ reason: 'HTTP_FORBIDDEN', message: httpForbiddenMessage(url) });
    const literal = new URL(url).hostname.replace(/^\[|\]$/g, '');
    if (!limits.allowPrivateNetwork && isPrivateAddress(literal)) return privateRefusal(url, literal);
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: req.headers,
        body,
        redirect: 'manual',
        dispatcher: dispatcherFor(limits.allowPrivateNetwork),
        signal: AbortSignal.any([signal, AbortSignal.timeout(limits.requestTimeoutMs)]),
      });
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause;
      if (cause instanceof PrivateAddressError) return privateRefusal(url, cause.address);
      return failure({ reason: 'POLICY_ERROR', message: unknownErrorMessage(`http_request to '${url}' failed: ${errorMessage(cause ?? err)}`) });
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
    const bytes = await readCapped(res, limits.maxResponseBytes).catch(() => undefined);
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
