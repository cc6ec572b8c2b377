/** Chainloop always lets policies reach these (engine.BaseAllowedHostnames). */
export const BASE_ALLOWED_HOSTNAMES = ['www.chainloop.dev', 'www.cisa.gov'];

/** Bounds on what one request may add with allowed_hostnames: a DNS name's length, and a count. */
export const MAX_HOST_PATTERN = 253;
export const MAX_REQUESTED_HOSTS = 64;

/**
 * `*` (any run of characters, dots included, as gobwas/glob without separators) and `?` (one
 * character), case-insensitive. Iterative, backtracking only to the last `*`: at most
 * |pattern| × |host| steps, where a regular expression built from the pattern could take exponential
 * time on a client-supplied pattern such as `*a*a*a*a*a*x`.
 */
export function globMatches(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase();
  const s = host.toLowerCase();
  let pi = 0;
  let si = 0;
  let star = -1;
  let resume = 0;
  while (si < s.length) {
    if (pi < p.length && (p[pi] === '?' || p[pi] === s[si]) && p[pi] !== '*') {
      pi++;
      si++;
    } else if (pi < p.length && p[pi] === '*') {
      star = pi++;
      resume = si;
    } else if (star >= 0) {
      pi = star + 1;
      si = ++resume;
    } else {
      return false;
    }
  }
  while (p[pi] === '*') pi++;
  return pi === p.length;
}

/**
 * Chainloop's (go-sdk) host rule: a request passes when the URL's hostname, without port, equals an
 * entry or matches it as a glob (`*.example.com`; a bare `*` allows every host).
 */
export function isHostAllowed(url: string, allowed: readonly string[]): boolean {
  let hostname: string;
  try {
    hostname = urlHostname(url);
  } catch {
    return false;
  }
  return matchesHostPattern(hostname, allowed);
}

/** A URL's host name without IPv6 brackets (`[::1]` → `::1`), as it is matched and resolved. */
export function urlHostname(url: string): string {
  return new URL(url).hostname.replace(/^\[|\]$/g, '');
}

/** Exact (case-insensitive) or glob match of a host name — or of another pattern, taken literally. */
export function matchesHostPattern(host: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => p.toLowerCase() === host.toLowerCase() || globMatches(p, host));
}
