import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { MaterialKind } from '../../src/gen/policyengine/v1/engine_pb.js';
import { DaemonMetrics } from '../../src/daemon/metrics.js';
import { grpcError, startDaemon } from '../helpers/daemon.js';
import { behaviourModule } from '../helpers/wat.js';

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
      await assert.rejects(d.tcp.loadPolicy(await module('three')), grpcError(status.RESOURCE_EXHAUSTED, 'POLICY_BUDGET', /2 policies are loaded, this daemon's maximum \(maxPolicies\)/));
      await d.tcp.loadPolicy({ ...(await module('two')), kinds: [MaterialKind.SARIF] });
      await d.tcp.unloadPolicy({ policy: 'one' });
      await d.tcp.loadPolicy(await module('three'));
      assert.deepEqual((await d.tcp.listPolicies()).policies.map((p) => p.name), ['three', 'two']);
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
      await assert.rejects(d.tcp.loadPolicy(await module('three')), grpcError(status.RESOURCE_EXHAUSTED, 'POLICY_BUDGET', new RegExp(`would hold \\d+ bytes of WebAssembly, above this daemon's ${size * 2 + 1}`)));
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
      for (const r of refused) assert.ok(grpcError(status.RESOURCE_EXHAUSTED, 'OVERLOADED', /policy loads are already running/)((r as PromiseRejectedResult).reason));
      await d.tcp.loadPolicy(await module('later'));
    } finally {
      await d.stop();
    }
  });

  it('labels refused evaluations with a loaded policy name only, never with what the client sent', async () => {
    const metrics = new DaemonMetrics();
    const d = await startDaemon({ threads: 1, maxEventLoopLagMs: 1, observer: metrics });
    try {
      await d.tcp.loadPolicy(await module('known'));
      // Keep the main thread late for several lag samples in a row (the monitor takes the minimum of
      // four), then evaluate while it still is.
      for (let i = 0; i < 12; i++) {
        const until = performance.now() + 15;
        while (performance.now() < until);
        await new Promise((r) => setImmediate(r));
      }
      for (const policy of ['known', 'attacker-chosen-label-1', 'attacker-chosen-label-2']) {
        await assert.rejects(d.engine.evaluate({ policy, material: { content: Buffer.from('{}'), kind: MaterialKind.EVIDENCE } }), /saturated/);
      }
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
