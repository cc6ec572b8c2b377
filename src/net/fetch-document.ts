import { PolicydError, errorMessage } from '../errors/policyd-error.js';
import { guardedFetch, readCapped } from './http-fetch.js';

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
  let answer: Awaited<ReturnType<typeof guardedFetch>>;
  try {
    answer = await guardedFetch(
      { url, method: 'GET' },
      { allowPrivateNetwork: limits.allowPrivateNetwork, maxRedirects: 10, signal: AbortSignal.timeout(limits.timeoutMs) },
    );
  } catch (err) {
    throw fail(errorMessage((err as { cause?: unknown }).cause ?? err));
  }
  if ('refused' in answer) {
    if (answer.refused === 'redirects') throw fail('too many redirects');
    const where = answer.url === url ? '' : ` (redirected to ${answer.url})`;
    throw new PolicydError(
      'UNSUPPORTED_REF',
      `${url}${where} reaches the private address ${'address' in answer ? answer.address : ''}; allow private networks to load from it`,
    );
  }
  const { res } = answer;
  if (res.status !== 200) {
    await res.body?.cancel().catch(() => {});
    throw fail(`HTTP ${res.status}`);
  }
  const bytes = await readCapped(res, limits.maxBytes).catch(() => undefined);
  if (!bytes) throw fail(`larger than ${limits.maxBytes} bytes`);
  return bytes;
}
