import { lookup, type LookupAddress } from 'node:dns';
import ipaddr from 'ipaddr.js';

/**
 * The SSRF guard: a policy (or a remote ref) may reach only global unicast addresses unless the
 * operator allows private networks. The special-purpose ranges come from ipaddr.js, a maintained
 * list (loopback, RFC 1918, carrier-grade NAT, link-local and cloud metadata, unique-local,
 * benchmarking 198.18.0.0/15, documentation, multicast, reserved…); IPv6 forms that carry an IPv4
 * address (mapped, compatible, SIIT, NAT64 64:ff9b::/96, 6to4) are judged by that address, and
 * Teredo and local-use NAT64 are refused outright.
 */
function embeddedIPv4(ip: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const p = ip.parts;
  const v4 = (hi: number, lo: number) => new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
  switch (ip.range()) {
    case 'ipv4Mapped':
    case 'rfc6145':
      return v4(p[6]!, p[7]!);
    case 'rfc6052': // only the well-known prefix 64:ff9b::/96 places the address in the last 32 bits
      return p[1] === 0xff9b && p.slice(2, 6).every((x) => x === 0) ? v4(p[6]!, p[7]!) : undefined;
    case '6to4':
      return v4(p[1]!, p[2]!);
  }
  // IPv4-compatible ::a.b.c.d (deprecated, but still routed by some stacks); :: and ::1 are themselves.
  if (p.slice(0, 6).every((x) => x === 0) && (p[6] !== 0 || p[7]! > 1)) return v4(p[6]!, p[7]!);
  return undefined;
}

/** True for an IP literal outside global unicast; false for a host name (names are judged after DNS). */
export function isPrivateAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  const ip = ipaddr.parse(address);
  if (ip.kind() === 'ipv4') return ip.range() !== 'unicast';
  const v6 = ip as ipaddr.IPv6;
  const embedded = embeddedIPv4(v6);
  if (embedded) return embedded.range() !== 'unicast';
  return v6.range() !== 'unicast';
}

export class PrivateAddressError extends Error {
  constructor(
    readonly hostname: string,
    readonly address: string,
  ) {
    super(`${hostname} resolves to the private address ${address}`);
  }
}

/**
 * A dns.lookup for the HTTP client's connections that refuses private addresses after resolution,
 * so a name that resolves (or re-resolves) to an internal address is caught at connect time.
 */
export function guardedLookup(
  hostname: string,
  options: object,
  callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void,
): void {
  lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const bad = addresses.find((a) => isPrivateAddress(a.address));
    if (bad) return callback(new PrivateAddressError(hostname, bad.address), []);
    if ((options as { all?: boolean }).all) return callback(null, addresses);
    callback(null, addresses[0]!.address, addresses[0]!.family);
  });
}
