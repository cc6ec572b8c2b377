/** Chainloop always lets policies reach these (engine.BaseAllowedHostnames). */
export const BASE_ALLOWED_HOSTNAMES = ['www.chainloop.dev', 'www.cisa.gov'];

function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`, 'i');
}

/**
 * Chainloop's (go-sdk) host rule: a request passes when the URL's hostname, without port, equals an
 * entry or matches it as a glob (`*.example.com`; a bare `*` allows every host).
 */
export function isHostAllowed(url: string, allowed: readonly string[]): boolean {
  let hostname: string;
  try {
    hostname = new URL(url).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return false;
  }
  return matchesHostPattern(hostname, allowed);
}

/** Exact (case-insensitive) or glob match of a host name — or of another pattern, taken literally. */
export function matchesHostPattern(host: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => p.toLowerCase() === host.toLowerCase() || globToRegExp(p).test(host));
}

/** The text go-sdk panics with; Chainloop's error mapping recognises it. */
export function notAllowedText(url: string): string {
  return `HTTP request to '${url}' is not allowed`;
}
