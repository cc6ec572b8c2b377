import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig, renderConfig } from '../../src/config/load.js';
import { cgroupMemoryLimit, cgroupQuota, checkGuestMemory } from '../../src/daemon/cgroup-limits.js';

describe('daemon configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'policyd-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };

  it('has defaults a newcomer can run with', () => {
    const c = loadConfig({});
    assert.deepEqual(c.listen, ['127.0.0.1:50051', `unix://${tmpdir()}/wasm-policyd-${process.getuid!()}/policyd.sock`]);
    assert.equal(c.timeoutMs, 60_000);
    assert.equal(c.http.allowPrivateNetwork, false);
    assert.equal(c.maxReceiveMb, 64);
  });

  it('layers defaults < file < environment < flags', () => {
    const path = file('layers.yaml', 'threads: 3\nmaxQueue: 10\nhttp:\n  allowedHostnames: [a.example]\n  maxResponseMb: 5\n');
    const c = loadConfig({
      file: path,
      env: {
        POLICYD_MAX_QUEUE: '20',
        POLICYD_HTTP_ALLOWED_HOSTNAMES: 'b.example,c.example',
        POLICYD_HTTP_ALLOW_PRIVATE_NETWORK: 'true',
        UNRELATED: 'x',
      },
      flags: { maxQueue: 30 },
    });
    assert.equal(c.threads, 3);
    assert.equal(c.maxQueue, 30);
    assert.deepEqual(c.http.allowedHostnames, ['b.example', 'c.example']);
    assert.equal(c.http.maxResponseMb, 5);
    assert.equal(c.http.allowPrivateNetwork, true);
  });

  const invalid: [string, () => unknown, RegExp][] = [
    [
      'an unknown key, naming it',
      () => loadConfig({ file: file('unknown.yaml', 'threads: 1\nhttp:\n  allowedHosts: [x]\n') }),
      /http: Unrecognized key: "allowedHosts"/,
    ],
    ['a wrong type', () => loadConfig({ file: file('type.yaml', 'maxQueue: lots\n') }), /maxQueue: Invalid input: expected number/],
    [
      'a bad environment value, naming the variable',
      () => loadConfig({ env: { POLICYD_THREADS: 'two' } }),
      /environment variable POLICYD_THREADS: "two" is not a number/,
    ],
    ['a bad boolean', () => loadConfig({ env: { POLICYD_WATCH: 'maybe' } }), /POLICYD_WATCH: "maybe" is not true or false/],
    ['a certificate without its key', () => loadConfig({ flags: { 'tls.cert': '/x.pem' } }), /tls: tls.cert and tls.key go together/],
    [
      'a short token',
      () => loadConfig({ flags: { 'auth.adminTokens': ['short'] } }),
      /auth.adminTokens.0: tokens must be at least 16 characters/,
    ],
    ['a file that is not a mapping', () => loadConfig({ file: file('list.yaml', '- a\n') }), /must be a YAML mapping of settings/],
  ];
  for (const [what, load, message] of invalid) {
    it(`refuses ${what}`, () => assert.throws(load, message));
  }

  it('prints the effective configuration with secrets redacted', () => {
    const text = renderConfig(
      loadConfig({
        flags: { 'auth.adminTokens': ['0123456789abcdef0'], 'discovery.grpcToken': 'cp-token', 'discovery.grpcAddress': 'cp:443' },
      }),
    );
    assert.match(text, /adminTokens:\n {4}- <redacted>/);
    assert.match(text, /grpcToken: <redacted>/);
    assert.match(text, /grpcAddress: cp:443/);
    assert.doesNotMatch(text, /0123456789abcdef0|cp-token/);
  });

  it('reads the CPU quota of cgroup v2 and v1', () => {
    const v2 = mkdtempSync(join(dir, 'v2-'));
    writeFileSync(join(v2, 'cpu.max'), '150000 100000\n');
    assert.equal(cgroupQuota(v2), 2);
    writeFileSync(join(v2, 'cpu.max'), 'max 100000\n');
    assert.equal(cgroupQuota(v2), undefined);
    const v1 = mkdtempSync(join(dir, 'v1-'));
    rmSync(join(v1, 'cpu'), { force: true, recursive: true });
    assert.equal(cgroupQuota(v1), undefined);
  });

  it('reads the memory limit of cgroup v2 and v1, unlimited as none', () => {
    const v2 = mkdtempSync(join(dir, 'mem-v2-'));
    writeFileSync(join(v2, 'memory.max'), '1073741824\n');
    assert.equal(cgroupMemoryLimit(v2), 2 ** 30);
    writeFileSync(join(v2, 'memory.max'), 'max\n');
    assert.equal(cgroupMemoryLimit(v2), undefined);
    const v1 = mkdtempSync(join(dir, 'mem-v1-'));
    mkdirSync(join(v1, 'memory'));
    writeFileSync(join(v1, 'memory', 'memory.limit_in_bytes'), '9223372036854771712\n');
    assert.equal(cgroupMemoryLimit(v1), undefined);
    writeFileSync(join(v1, 'memory', 'memory.limit_in_bytes'), '536870912\n');
    assert.equal(cgroupMemoryLimit(v1), 2 ** 29);
  });

  it('refuses more guest memory than the budget: the setting, or 75 % of the container limit', () => {
    const cases: { name: string; threads: number; perGuest: number; budget: number; limit?: number; refused?: RegExp }[] = [
      { name: 'within an explicit budget', threads: 2, perGuest: 256, budget: 512 },
      {
        name: 'beyond an explicit budget',
        threads: 4,
        perGuest: 256,
        budget: 512,
        refused: /4 workers × memoryLimitMb 256 MiB .* can reach 1024 MiB, above the budget of 512 MiB \(maxGuestMemoryMb\)/,
      },
      { name: 'the chart default (2 × 256 MiB in 1 GiB)', threads: 2, perGuest: 256, budget: 0, limit: 2 ** 30 },
      {
        name: 'beyond 75 % of the limit',
        threads: 4,
        perGuest: 256,
        budget: 0,
        limit: 2 ** 30,
        refused: /above the budget of 768 MiB \(75 % of the container's memory limit\)/,
      },
      { name: 'no limit and no budget', threads: 64, perGuest: 4096, budget: 0 },
    ];
    for (const c of cases) {
      const check = () => checkGuestMemory(c.threads, c.perGuest, c.budget, c.limit);
      if (c.refused) assert.throws(check, c.refused, c.name);
      else assert.doesNotThrow(check, c.name);
    }
  });
});
