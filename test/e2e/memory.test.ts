import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ROOT } from '../helpers/paths.js';

/**
 * Evaluations must leave nothing behind, whether a used instance is reset for the next (a module that
 * can be: src/wasm/resettable.ts) or each gets a new one (a module that cannot; forced here). Before the worker had its own WASI, each
 * evaluation of a WASI policy kept ~3.4 KB of native memory (V8's per-instance wrappers for Node's WASI
 * functions): 18,000 evaluations grew RSS by ~60 MB. The bound below is a third of that, far above
 * the noise of a flat run (1–5 MB here). The loop runs in a worker with the pool's resource limits;
 * on Node 24, without them, V8 grows the young generation for the first ~16,000 evaluations (+30 MiB
 * after this warm-up), so the warm-up is half the run.
 */
const EVALUATIONS = 32_000;
const MAX_GROWTH_BYTES = 20 * 2 ** 20;
const TINYGO = `${ROOT}../shared/fixtures/chainloop/simple_test_policy.wasm`;

interface Soak {
  tracked: number;
  instances: number;
  collected: number;
  hosts: number;
  rssAfterWarmUp: number;
  rssAtEnd: number;
}

async function soak(mode: 'reset' | 'fresh'): Promise<Soak> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      '--expose-gc',
      '--disable-warning=ExperimentalWarning',
      `${ROOT}dist/test/helpers/instance-soak.js`,
      TINYGO,
      String(EVALUATIONS),
      mode,
    ],
    { maxBuffer: 2 ** 20 },
  );
  return JSON.parse(stdout) as Soak;
}

describe("memory over many evaluations of Chainloop's TinyGo (WASI) policy", () => {
  const runs: Partial<Record<'reset' | 'fresh', Soak>> = {};
  before(async () => {
    runs.reset = await soak('reset');
    runs.fresh = await soak('fresh');
  });

  it('serves every evaluation from one instance, reset each time, in one kept host', () => {
    const run = runs.reset!;
    assert.equal(run.hosts, 1, 'one Extism host serves every evaluation of the same script and args');
    assert.equal(run.instances, 1, `${run.instances} instances for ${run.tracked} evaluations`);
  });

  it('without reset, gives every evaluation a new instance in one kept host and collects every used one', () => {
    const run = runs.fresh!;
    assert.equal(run.hosts, 1);
    assert.equal(run.instances, run.tracked);
    // One instance can stay alive: the last one, kept as spent.
    assert.ok(run.collected >= run.tracked - 2, `${run.collected} of ${run.tracked} instances collected`);
  });

  for (const mode of ['reset', 'fresh'] as const) {
    it(`keeps RSS flat after warm-up (${mode})`, () => {
      const run = runs[mode]!;
      const growth = run.rssAtEnd - run.rssAfterWarmUp;
      assert.ok(growth < MAX_GROWTH_BYTES, `RSS grew ${(growth / 2 ** 20).toFixed(1)} MiB over ${EVALUATIONS / 2} evaluations`);
    });
  }
});
