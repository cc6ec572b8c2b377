import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BroadcastChannel } from 'node:worker_threads';
import { evaluateCall } from '../../src/worker/entry.js';
import { RETIRED_SETUPS_CHANNEL, UNKNOWN_SETUP, type ScriptCall, type ScriptOutcome, type ScriptSetup } from '../../src/worker/protocol.js';
import { scriptSetup } from '../../src/worker/task.js';
import { compilePolicyModule } from '../../src/wasm/inspect.js';
import { behaviourModule } from '../helpers/wat.js';

async function setupOf(id: string, output: string): Promise<ScriptSetup> {
  const facts = await compilePolicyModule(await behaviourModule({ output }), id, 16);
  return scriptSetup(facts, { id, instanceKey: id, policyName: id, logLevel: 'error' });
}

const call = (setup: ScriptCall['setup']): ScriptCall => ({ setup, input: new Uint8Array(0), includeRawOutput: false, allowedHosts: [] });

async function violations(answer: ReturnType<typeof evaluateCall>): Promise<string[]> {
  assert.notEqual(answer, UNKNOWN_SETUP);
  const outcome = (await answer) as ScriptOutcome;
  assert.ok(outcome.ok, JSON.stringify(outcome));
  return outcome.result.violations.map((v) => v.message);
}

describe('the pool worker entry: calls name a setup the worker keeps', () => {
  it('answers UNKNOWN_SETUP for a setup it was never sent, runs a call that carries it, then runs calls that only name it', async () => {
    const a = await setupOf('entry-a', '{"violations":["from a"]}');
    assert.equal(evaluateCall(call('entry-a')), UNKNOWN_SETUP);
    assert.deepEqual(await violations(evaluateCall(call(a))), ['from a']);
    assert.deepEqual(await violations(evaluateCall(call('entry-a'))), ['from a']);
  });

  it('keeps setups apart by id, and forgets the least recently used beyond its bound (64)', async () => {
    const b = await setupOf('entry-b', '{"violations":["from b"]}');
    const c = await setupOf('entry-c', '{"violations":["from c"]}');
    await violations(evaluateCall(call(b)));
    await violations(evaluateCall(call(c)));
    assert.deepEqual(await violations(evaluateCall(call('entry-b'))), ['from b']);
    assert.deepEqual(await violations(evaluateCall(call('entry-c'))), ['from c']);
    // 64 more setups after c was last used: c is forgotten, the one used since (b's) too.
    const filler = await setupOf('entry-filler', '{"violations":[]}');
    for (let i = 0; i < 64; i++) await violations(evaluateCall(call({ ...filler, id: `entry-filler-${i}` })));
    assert.equal(evaluateCall(call('entry-c')), UNKNOWN_SETUP);
    assert.equal(evaluateCall(call('entry-b')), UNKNOWN_SETUP);
    assert.deepEqual(await violations(evaluateCall(call('entry-filler-63'))), []);
  });

  it('forgets the setups the engine names on the retired-setups channel', async () => {
    const d = await setupOf('entry-d', '{"violations":["from d"]}');
    await violations(evaluateCall(call(d)));
    const engineSide = new BroadcastChannel(RETIRED_SETUPS_CHANNEL);
    try {
      engineSide.postMessage(['entry-d']);
      // Delivered on a later turn of the event loop.
      for (let turn = 0; turn < 1000 && evaluateCall(call('entry-d')) !== UNKNOWN_SETUP; turn++) {
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(evaluateCall(call('entry-d')), UNKNOWN_SETUP);
    } finally {
      engineSide.close();
    }
  });
});
