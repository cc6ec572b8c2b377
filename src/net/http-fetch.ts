import { DEFAULTS, MiB } from '../config/defaults.js';
import { Agent, fetch, type Response } from 'undici';
import { errorMessage, type ErrorData } from '../errors/policyd-error.js';
import { httpForbiddenMessage, unknownErrorMessage } from '../errors/chainloop-messages.js';
import { isHostAllowed, urlHostname } from './allowed-hosts.js';
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
  maxResponseBytes: DEFAULTS.http.maxResponseMb * MiB,
  requestTimeoutMs: DEFAULTS.http.requestTimeoutMs,
  maxRedirects: DEFAULTS.http.maxRedirects,
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

export interface GuardedRequest {
  url: string;
  method: string;
  headers?: Record<string, string>;
  body?: Uint8Array;
}

/** Why a hop was not made: the allow-list, the SSRF guard, or too many redirects. */
export type Refusal =
  | { refused: 'host'; url: string }
  | { refused: 'private'; url: string; address: string }
  | { refused: 'redirects'; url: string };

export interface GuardOptions {
  /** Host allow-list checked on every hop; undefined: any host. */
  allowed?: readonly string[];
  allowPrivateNetwork: boolean;
  maxRedirects: number;
  signal: AbortSignal;
}

function withoutCredentials(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !/^(authorization|cookie|proxy-authorization)$/i.test(name)));
}

/**
 * One request, redirects followed by hand so that every hop — the first one too — passes the
 * allow-list and, unless private networks are allowed, the SSRF guard: IP literals here, names after
 * DNS resolution (guardedLookup, which undici does not call for literals). Credentials are not sent on to another
 * origin, as Go's client and browsers do. Network errors throw.
 */
export async function guardedFetch(req: GuardedRequest, options: GuardOptions): Promise<{ res: Response; url: string } | Refusal> {
  let { url, method, headers } = req;
  let body = method === 'GET' || method === 'HEAD' ? undefined : req.body;
  for (let hop = 0; hop <= options.maxRedirects; hop++) {
    if (options.allowed && !isHostAllowed(url, options.allowed)) return { refused: 'host', url };
    const literal = urlHostname(url);
    if (!options.allowPrivateNetwork && isPrivateAddress(literal)) return { refused: 'private', url, address: literal };
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        body,
        redirect: 'manual',
        dispatcher: dispatcherFor(options.allowPrivateNetwork),
        signal: options.signal,
      });
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause;
      if (cause instanceof PrivateAddressError) return { refused: 'private', url, address: cause.address };
      throw err;
    }
    const location = res.headers.get('location');
    if (!REDIRECTS.has(res.status) || !location) return { res, url };
    await res.body?.cancel();
    const next = new URL(location, url);
    // Credentials are for the origin they were given to (a registry redirecting a blob to object storage).
    if (headers && next.origin !== new URL(url).origin) headers = withoutCredentials(headers);
    url = next.href;
    if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
      method = 'GET';
      body = undefined;
    }
  }
  return { refused: 'redirects', url: req.url };
}

/**
 * Performs a guest's request. Unlike Chainloop, every redirect hop is checked against the allow-list
 * (an allowed host cannot bounce a policy to a forbidden one) and, unless private networks are
 * allowed, against private addresses.
 */
export async function performGuestHttp(
  req: GuestHttpRequest,
  allowed: readonly string[],
  limits: HttpLimits,
  signal: AbortSignal,
): Promise<GuestHttpResult> {
  let answer: Awaited<ReturnType<typeof guardedFetch>>;
  try {
    answer = await guardedFetch(req, {
      allowed,
      allowPrivateNetwork: limits.allowPrivateNetwork,
      maxRedirects: limits.maxRedirects,
      signal: AbortSignal.any([signal, AbortSignal.timeout(limits.requestTimeoutMs)]),
    });
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    return failure({
      reason: 'POLICY_ERROR',
      message: unknownErrorMessage(`http_request to '${req.url}' failed: ${errorMessage(cause ?? err)}`),
    });
  }
  if ('refused' in answer) {
    if (answer.refused === 'host') return failure({ reason: 'HTTP_FORBIDDEN', message: httpForbiddenMessage(answer.url) });
    if (answer.refused === 'private') return privateRefusal(answer.url, answer.address);
    return failure({ reason: 'POLICY_ERROR', message: unknownErrorMessage(`too many redirects from '${req.url}'`) });
  }
  const { res, url } = answer;
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
