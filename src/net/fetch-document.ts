import { fetch } from 'undici';
import { PolicydError, errorMessage } from '../errors/policyd-error.js';
import { PrivateAddressError, isPrivateAddress } from './address-guard.js';
import { dispatcherFor, readCapped } from './http-fetch.js';

export interface RemoteFetchLimits {
  timeoutMs: number;
  maxBytes: number;
  allowPrivateNetwork: boolean;
}

export const DEFAULT_REMOTE_FETCH: RemoteFetchLimits = { timeoutMs: 30_000, maxBytes: 64 * 2 ** 20, allowPrivateNetwork: false };

/**
 * Fetches a policy document or script from an http(s) ref, bounded in time and size, behind the same
 * SSRF guard as guest HTTP (a LoadPolicy caller must not make the daemon read internal services).
 */
export async function fetchDocument(url: string, limits: RemoteFetchLimits): Promise<Uint8Array> {
  const fail = (why: string) => new PolicydError('SCRIPT_NOT_FOUND', `cannot fetch ${url}: ${why}`);
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  if (!limits.allowPrivateNetwork && isPrivateAddress(host)) {
    throw new PolicydError('UNSUPPORTED_REF', `${url} points at the private address ${host}; allow private networks to load from it`);
  }
  let res;
  try {
    res = await fetch(url, { dispatcher: dispatcherFor(limits.allowPrivateNetwork), signal: AbortSignal.timeout(limits.timeoutMs) });
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    if (cause instanceof PrivateAddressError) {
      throw new PolicydError('UNSUPPORTED_REF', `${url}: ${cause.message}; allow private networks to load from it`);
    }
    throw fail(errorMessage(cause ?? err));
  }
  if (res.status !== 200) {
    await res.body?.cancel().catch(() => {});
    throw fail(`HTTP ${res.status}`);
  }
  const bytes = await readCapped(res, limits.maxBytes).catch(() => undefined);
  if (!bytes) throw fail(`larger than ${limits.maxBytes} bytes`);
  return bytes;
}
