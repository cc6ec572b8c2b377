import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BroadcastChannel } from 'node:worker_threads';
import { MaterialKind } from '../../src/gen/policyengine/v1/engine_pb.js';
import { PolicyEngine } from '../../src/engine/policy-engine.js';
import { RETIRED_SETUPS_CHANNEL } from '../../src/worker/protocol.js';
import { behaviourModule } from '../helpers/wat.js';

const material = { content: new TextEncoder().encode('{}'), kind: MaterialKind.EVIDENCE };

describe('setups the workers keep (src/worker/entry.ts)', () => {
  it('serves every evaluation from the setup of the version loaded, and names the setups of versions unloaded or replaced to the workers', async () => {
    const engine = new PolicyEngine({ threads: 2 });
    const retired: string[][] = [];
    const listener = new BroadcastChannel(RETIRED_SETUPS_CHANNEL);
    listener.onmessage = (event) => retired.push((event as { data: string[] }).data);
    const load = async (violation: string) =>
      engine.load({ type: 'module', bytes: await behaviourModule({ output: `{"violations":["${violation}"]}` }), name: 'p', kinds: [] });
    const messages = async () => (await engine.evaluate({ policy: 'p', material })).result.violations.map((v) => v.message);
    const delivered = async (count: number) => {
      for (let turn = 0; turn < 1000 && retired.length < count; turn++) await new Promise((resolve) => setImmediate(resolve));
      assert.equal(retired.length, count);
    };
    try {
      await load('first');
      // More evaluations than workers: each worker is sent the setup once, then named it.
      for (let i = 0; i < 6; i++) assert.deepEqual(await messages(), ['first']);
      await load('second');
      await delivered(1);
      assert.equal(retired[0]!.length, 1, 'the replaced version had one script');
      for (let i = 0; i < 6; i++) assert.deepEqual(await messages(), ['second']);
      engine.unload('p');
      await delivered(2);
      assert.notDeepEqual(retired[1], retired[0], 'each version has its own setup');
    } finally {
      listener.close();
      await engine.close();
    }
  });
});
