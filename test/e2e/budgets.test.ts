import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { MaterialKind } from '../../src/gen/policyengine/v1/engine_pb.js';
import { DaemonMetrics } from '../../src/daemon/metrics.js';
import { grpcError, startDaemon } from '../helpers/daemon.js';
import { fixture } from '../helpers/paths.js';
import { BLOCK_FUNCTION, behaviourModule, wat } from '../helpers/wat.js';

/** A distinct module per name: policies are content-addressed, so equal bytes would be one policy. */
const modules = new Map<string, Uint8Array>();
async function module(name: string) {
  if (!modules.has(name)) modules.set(name, await behaviourModule({ output: JSON.stringify({ violations: [name] }) }));
  return { source: { case: 'wasmModule' as const, value: modules.get(name)! }, name, kinds: [MaterialKind.EVIDENCE] };
}

describe('budgets', () => {
  it('bounds the number of loaded policies; a new version of a loaded name still loads', async () => {
    const d = await startDaemon({ threads: 1, maxPolicies: 2 });
    try {
      await d.tcp.loadPolicy(await module('one'));
      await d.tcp.loadPolicy(await module('two'));
      await assert.rejects(
        d.tcp.loadPolicy(await module('three')),
        grpcError(status.RESOURCE_EXHAUSTED, 'POLICY_BUDGET', /2 policies are loaded, this daemon's maximum \(maxPolicies\)/),
      );
      await d.tcp.loadPolicy({ ...(await module('two')), kinds: [MaterialKind.SARIF] });
      await d.tcp.unloadPolicy({ policy: 'one' });
      await d.tcp.loadPolicy(await module('three'));
      assert.deepEqual(
        (await d.tcp.listPolicies()).policies.map((p) => p.name),
        ['three', 'two'],
      );
    } finally {
      await d.stop();
    }
  });

  it('bounds the WebAssembly bytes held', async () => {
    const size = (await module('one')).source.value.byteLength;
    const d = await startDaemon({ threads: 1, maxPolicyBytes: size * 2 + 1 });
    try {
      await d.tcp.loadPolicy(await module('one'));
      await d.tcp.loadPolicy(await module('two'));
      await assert.rejects(
        d.tcp.loadPolicy(await module('three')),
        grpcError(
          status.RESOURCE_EXHAUSTED,
          'POLICY_BUDGET',
          new RegExp(`would hold \\d+ bytes of WebAssembly, above this daemon's ${size * 2 + 1}`),
        ),
      );
    } finally {
      await d.stop();
    }
  });

  it('refuses LoadPolicy calls beyond maxConcurrentLoads at once, and serves them after', async () => {
    const d = await startDaemon({ threads: 1, maxConcurrentLoads: 1 });
    try {
      const requests = await Promise.all(Array.from({ length: 6 }, (_, i) => module(`p${i}`)));
      const results = await Promise.allSettled(requests.map((r) => d.tcp.loadPolicy(r)));
      const refused = results.filter((r) => r.status === 'rejected');
      assert.ok(refused.length > 0 && refused.length < 6, `some loads refused, not all: ${refused.length}`);
      for (const r of refused)
        assert.ok(
          grpcError(status.RESOURCE_EXHAUSTED, 'OVERLOADED', /policy loads are already running/)((r as PromiseRejectedResult).reason),
        );
      await d.tcp.loadPolicy(await module('later'));
    } finally {
      await d.stop();
    }
  });

  it('bounds the violations one script may report (maxViolations)', async () => {
    const d = await startDaemon({ threads: 1, maxViolations: 10 });
    const reporting = async (n: number) => ({
      source: {
        case: 'wasmModule' as const,
        value: await behaviourModule({ output: JSON.stringify({ violations: Array.from({ length: n }, (_, i) => `v${i}`) }) }),
      },
      name: `reports-${n}`,
      kinds: [MaterialKind.EVIDENCE],
    });
    try {
      await d.tcp.loadPolicy(await reporting(10));
      await d.tcp.loadPolicy(await reporting(11));
      const evaluate = (policy: string) =>
        d.tcp.evaluate({ policy, material: { content: Buffer.from('{}'), kind: MaterialKind.EVIDENCE } });
      assert.equal((await evaluate('reports-10')).result!.violations.length, 10);
      await assert.rejects(
        evaluate('reports-11'),
        grpcError(status.RESOURCE_EXHAUSTED, 'OUTPUT_TOO_LARGE', /11 violations, above the limit of 10 \(maxViolations\)/),
      );
    } finally {
      await d.stop();
    }
  });

  it('bounds the HTTP and discover calls of one evaluation (maxHostCalls)', async () => {
    let served = 0;
    const web = createServer((_req, res) => {
      served++;
      res.end('ok');
    });
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    const request = JSON.stringify({ url: `http://127.0.0.1:${(web.address() as AddressInfo).port}/`, method: 'GET' });
    /** Calls http_request `times` times, then outputs {}. */
    const caller = (times: number) =>
      wat(`(module
        (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
        (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
        (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
        (import "extism:host/env" "http_request" (func $http (param i64 i64) (result i64)))
        (memory (export "memory") 1)
        (data (i32.const 0) ${JSON.stringify(request)})
        (data (i32.const 4096) "{}")
        ${BLOCK_FUNCTION}
        (func (export "Execute") (result i32) (local $i i32)
          (block $done (loop $again
            (br_if $done (i32.ge_u (local.get $i) (i32.const ${times})))
            (drop (call $http (call $block (i32.const 0) (i32.const ${request.length})) (i64.const 0)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $again)))
          (call $output_set (call $block (i32.const 4096) (i32.const 2)) (i64.const 2))
          (i32.const 0)))`);
    const d = await startDaemon({ threads: 1, maxHostCalls: 5, http: { allowPrivateNetwork: true } });
    try {
      for (const [name, times] of [
        ['five-calls', 5],
        ['ten-calls', 10],
      ] as const) {
        await d.tcp.loadPolicy({ source: { case: 'wasmModule', value: await caller(times) }, name, kinds: [MaterialKind.EVIDENCE] });
      }
      const evaluate = (policy: string) =>
        d.tcp.evaluate({
          policy,
          material: { content: Buffer.from('{}'), kind: MaterialKind.EVIDENCE },
          options: { allowedHostnames: ['127.0.0.1'] },
        });
      assert.deepEqual((await evaluate('five-calls')).result!.violations, []);
      assert.equal(served, 5);
      await assert.rejects(
        evaluate('ten-calls'),
        grpcError(status.RESOURCE_EXHAUSTED, 'HOST_CALL_LIMIT', /more than 5 HTTP or discover calls in one evaluation/),
      );
      assert.equal(served, 10, 'the sixth call was never made');
    } finally {
      await d.stop();
      web.close();
    }
  });

  it('sheds load for a late event loop only when no worker is idle, with a loaded policy name as the only label', async () => {
    const metrics = new DaemonMetrics();
    const d = await startDaemon({ threads: 1, maxEventLoopLagMs: 1, observers: [metrics] });
    const evidence = { content: Buffer.from('{}'), kind: MaterialKind.EVIDENCE };
    try {
      await d.tcp.loadPolicy(await module('known'));
      await d.tcp.loadPolicy({ source: { case: 'wasmModule', value: fixture('spin') }, name: 'spin' });
      // Keeps the main thread late for several lag samples in a row (the monitor takes the minimum of four).
      const lateLoop = async () => {
        for (let i = 0; i < 12; i++) {
          const until = performance.now() + 15;
          while (performance.now() < until);
          await new Promise((r) => setImmediate(r));
        }
      };
      // A late loop with the worker idle: the evaluation can start at once, so it is taken.
      await lateLoop();
      const taken = await d.engine.evaluate({ policy: 'known', material: evidence });
      assert.deepEqual(
        taken.result.violations.map((v) => v.message),
        ['known'],
      );
      // The only worker busy (a guest that spins until its timeout) and the loop late: refused.
      const stop = new AbortController();
      const busy = d.engine.evaluate({ policy: 'spin', material: evidence, signal: stop.signal }).catch((err: unknown) => err);
      await lateLoop();
      for (const policy of ['known', 'attacker-chosen-label-1', 'attacker-chosen-label-2']) {
        await assert.rejects(d.engine.evaluate({ policy, material: evidence }), /saturated/);
      }
      stop.abort();
      await busy;
      const text = await metrics.registry.metrics();
      assert.match(text, /policyd_evaluations_total\{policy="\(unknown\)",outcome="OVERLOADED"\} 2/);
      assert.match(text, /policyd_evaluations_total\{policy="known",outcome="OVERLOADED"\} 1/);
      assert.doesNotMatch(text, /attacker-chosen-label/);
    } finally {
      await d.stop();
    }
  });
});

describe('policy documents are parsed off the main thread, within a time budget', () => {
  it('keeps evaluating while a huge document parses, refuses it when the budget passes, and parses the next one', async () => {
    const d = await startDaemon({ threads: 1, documentParseMs: 300 });
    try {
      await d.tcp.loadPolicy(await module('known'));
      const entries = Array.from({ length: 200_000 }, (_, i) => `  - kind: EVIDENCE\n    embedded: x${i}`).join('\n');
      const huge = Buffer.from(`apiVersion: chainloop.dev/v1\nkind: Policy\nmetadata: {name: huge}\nspec:\n  policies:\n${entries}\n`);
      const events: string[] = [];
      const load = d.tcp.loadPolicy({ source: { case: 'policyDocument', value: huge } }).then(
        () => events.push('huge loaded'),
        (err: unknown) => {
          events.push('huge refused');
          return err;
        },
      );
      // Sent after the document: answered while it is still being parsed.
      await d.tcp.evaluate({ policy: 'known', material: { content: Buffer.from('{}'), kind: MaterialKind.EVIDENCE } });
      events.push('evaluated');
      assert.ok(grpcError(status.INVALID_ARGUMENT, 'INVALID_DOCUMENT', /took longer than 300 ms to parse/)(await load));
      assert.deepEqual(events, ['evaluated', 'huge refused']);
      assert.equal((await d.tcp.loadPolicy(await module('after'))).policy!.name, 'after');
    } finally {
      await d.stop();
    }
  });
});
