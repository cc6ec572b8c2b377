import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MaterialKind } from '../../src/gen/policyengine/v1/engine_pb.js';
import { resolvePolicy } from '../../src/policies/loader.js';
import { PolicyRegistry, type LoadedPolicy } from '../../src/policies/registry.js';
import { behaviourModule } from '../helpers/wat.js';

const limits = { timeoutMs: 1000, memoryLimitPages: 16 };
const noProbe = async () => {};

/** A policy of `name` whose module's bytes depend on `version`. */
async function policy(name: string, version: string) {
  const bytes = await behaviourModule({ output: JSON.stringify({ violations: [version] }) });
  return resolvePolicy(
    { type: 'module', bytes, name, kinds: [MaterialKind.EVIDENCE] },
    { fetchRemote: () => Promise.reject(new Error('no network')) },
  );
}

describe('the policy registry', () => {
  it('publishes by name and digest; the same content again is already loaded', async () => {
    const r = new PolicyRegistry();
    const a = await policy('a', '1');
    const first = await r.add(a, limits, noProbe);
    assert.equal(first.alreadyLoaded, false);
    assert.equal(r.get('a'), first.policy);
    assert.equal(r.get(a.digest), first.policy);
    assert.equal((await r.add(a, limits, noProbe)).alreadyLoaded, true);
    assert.equal((await r.add(a, { ...limits, timeoutMs: 2000 }, noProbe)).alreadyLoaded, false, 'other limits are another load');
  });

  it('replaces a name with its new version and forgets the old digest', async () => {
    const r = new PolicyRegistry();
    const v1 = await policy('a', '1');
    const v2 = await policy('a', '2');
    await r.add(v1, limits, noProbe);
    await r.add(v2, limits, noProbe);
    assert.equal(r.get('a')?.digest, v2.digest);
    assert.equal(r.get(v1.digest), undefined);
    assert.equal(r.size, 1);
  });

  it('publishes nothing when the probe fails', async () => {
    const r = new PolicyRegistry();
    await assert.rejects(
      r.add(await policy('a', '1'), limits, () => Promise.reject(new Error('cannot instantiate'))),
      /cannot instantiate/,
    );
    assert.equal(r.size, 0);
    assert.equal(r.get('a'), undefined);
  });

  it('tells of every policy object it will not serve again: replaced, reloaded under other limits, unloaded, or never published', async () => {
    const retired: LoadedPolicy[] = [];
    const r = new PolicyRegistry((p) => retired.push(p));
    const v1 = await policy('a', '1');
    const first = (await r.add(v1, limits, noProbe)).policy;
    await r.add(v1, limits, noProbe);
    assert.deepEqual(retired, [], 'the same content again retires nothing');
    const otherLimits = (await r.add(v1, { ...limits, timeoutMs: 2000 }, noProbe)).policy;
    assert.deepEqual(retired, [first]);
    const second = (await r.add(await policy('a', '2'), limits, noProbe)).policy;
    assert.deepEqual(retired, [first, otherLimits]);
    const failed = policy('b', '3');
    let probed: LoadedPolicy | undefined;
    await assert.rejects(
      r.add(await failed, limits, async (p) => {
        probed = p;
        throw new Error('cannot instantiate');
      }),
    );
    assert.deepEqual(retired, [first, otherLimits, probed]);
    r.remove('a');
    assert.deepEqual(retired, [first, otherLimits, probed, second]);
  });

  it('removes by name or by digest, only the version asked for', async () => {
    const r = new PolicyRegistry();
    const a = await policy('a', '1');
    const b = await policy('b', '2');
    await r.add(a, limits, noProbe);
    await r.add(b, limits, noProbe);
    assert.equal(r.remove(a.digest)?.name, 'a');
    assert.equal(r.get('a'), undefined);
    assert.equal(r.remove('b')?.digest, b.digest);
    assert.equal(r.remove('b'), undefined);
    assert.deepEqual(r.list(), []);
  });

  it('gives a digest to one name: the same bytes loaded under another name move to it', async () => {
    const r = new PolicyRegistry();
    const first = await policy('first', 'same');
    const second = await policy('second', 'same');
    assert.equal(first.digest, second.digest);
    await r.add(first, limits, noProbe);
    await r.add(second, limits, noProbe);
    assert.equal(r.get('first'), undefined);
    assert.equal(r.get(first.digest)?.name, 'second');
  });

  it('lists by name', async () => {
    const r = new PolicyRegistry();
    for (const name of ['c', 'a', 'b']) await r.add(await policy(name, name), limits, noProbe);
    assert.deepEqual(
      r.list().map((p) => p.name),
      ['a', 'b', 'c'],
    );
  });
});
