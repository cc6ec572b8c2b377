import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPrivateAddress } from '../../src/net/address-guard.js';
import { globMatches, matchesHostPattern } from '../../src/net/allowed-hosts.js';

describe('the SSRF guard (isPrivateAddress)', () => {
  const cases: { name: string; address: string; internal: boolean }[] = [
    { name: 'public IPv4', address: '8.8.8.8', internal: false },
    { name: 'public IPv6', address: '2606:4700::1111', internal: false },
    { name: 'a host name (judged after DNS)', address: 'example.com', internal: false },
    { name: 'loopback', address: '127.0.0.1', internal: true },
    { name: 'loopback elsewhere in 127/8', address: '127.1.2.3', internal: true },
    { name: 'RFC 1918', address: '10.1.2.3', internal: true },
    { name: 'RFC 1918 172.16/12', address: '172.31.255.1', internal: true },
    { name: 'carrier-grade NAT', address: '100.64.0.1', internal: true },
    { name: 'cloud metadata (link-local)', address: '169.254.169.254', internal: true },
    { name: 'benchmarking 198.18.0.0/15', address: '198.19.0.1', internal: true },
    { name: 'documentation TEST-NET-1', address: '192.0.2.1', internal: true },
    { name: 'IETF protocol assignments 192.0.0.0/24', address: '192.0.0.170', internal: true },
    { name: 'unspecified', address: '0.0.0.0', internal: true },
    { name: 'broadcast', address: '255.255.255.255', internal: true },
    { name: 'multicast', address: '224.0.0.1', internal: true },
    { name: 'IPv6 loopback', address: '::1', internal: true },
    { name: 'IPv6 unspecified', address: '::', internal: true },
    { name: 'IPv6 unique-local', address: 'fd00::1', internal: true },
    { name: 'IPv6 link-local with a zone', address: 'fe80::1%eth0', internal: true },
    { name: 'IPv4-mapped loopback', address: '::ffff:127.0.0.1', internal: true },
    { name: 'IPv4-mapped metadata in hex', address: '::ffff:a9fe:a9fe', internal: true },
    { name: 'IPv4-mapped public', address: '::ffff:8.8.8.8', internal: false },
    { name: 'IPv4-compatible loopback', address: '::127.0.0.1', internal: true },
    { name: 'SIIT (RFC 6145) loopback', address: '::ffff:0:7f00:1', internal: true },
    { name: 'NAT64 of the metadata address', address: '64:ff9b::a9fe:a9fe', internal: true },
    { name: 'NAT64 of a public address', address: '64:ff9b::808:808', internal: false },
    { name: 'local-use NAT64 (RFC 8215)', address: '64:ff9b:1::a00:1', internal: true },
    { name: '6to4 of the metadata address', address: '2002:a9fe:a9fe::1', internal: true },
    { name: '6to4 of a public address', address: '2002:808:808::1', internal: false },
    { name: 'Teredo', address: '2001:0:4136:e378:8000:63bf:3fff:fdd2', internal: true },
    { name: 'IPv6 documentation', address: '2001:db8::1', internal: true },
  ];
  for (const c of cases) {
    it(`${c.internal ? 'refuses' : 'lets through'} ${c.name} (${c.address})`, () => {
      assert.equal(isPrivateAddress(c.address), c.internal);
    });
  }
  it('judges literals the way URLs normalise them (decimal and hex IPv4)', () => {
    for (const url of ['http://2130706433/', 'http://0x7f.1/', 'http://[::ffff:7f00:1]/']) {
      assert.equal(isPrivateAddress(new URL(url).hostname.replace(/^\[|\]$/g, '')), true, url);
    }
  });
});

describe('host globs', () => {
  const cases: { name: string; pattern: string; host: string; matches: boolean }[] = [
    { name: 'a subdomain wildcard', pattern: '*.example.com', host: 'api.example.com', matches: true },
    {
      name: 'a subdomain wildcard across dots (gobwas/glob without separators)',
      pattern: '*.example.com',
      host: 'a.b.example.com',
      matches: true,
    },
    { name: 'a subdomain wildcard against the apex', pattern: '*.example.com', host: 'example.com', matches: false },
    { name: 'a suffix attack', pattern: '*.example.com', host: 'example.com.evil.net', matches: false },
    { name: 'a bare star', pattern: '*', host: 'anything.at.all', matches: true },
    { name: 'a question mark', pattern: 'api?.example.com', host: 'api2.example.com', matches: true },
    { name: 'case', pattern: '*.EXAMPLE.com', host: 'Api.example.COM', matches: true },
    { name: 'dots are literal', pattern: 'a.b', host: 'axb', matches: false },
    { name: 'several stars', pattern: '*a*b*c', host: 'xxaxxbxxc', matches: true },
    { name: 'a trailing star', pattern: 'api.*', host: 'api.example.org', matches: true },
  ];
  for (const c of cases) {
    it(`${c.matches ? 'matches' : 'does not match'} ${c.name}: ${c.pattern} ~ ${c.host}`, () => {
      assert.equal(globMatches(c.pattern, c.host), c.matches);
    });
  }

  it('answers a pattern built to backtrack (*a*a*a…x against a long name) — a regular expression took minutes', { timeout: 30_000 }, () => {
    const host = `${'a'.repeat(250)}.b`;
    assert.equal(globMatches('*a*a*a*a*a*a*a*a*a*a*x', host), false);
    assert.equal(matchesHostPattern(host, ['*a*a*a*a*a*a*a*a*a*a*x', '*a*a*a*a*a*a*a*a*a*a*b']), true);
  });
});
