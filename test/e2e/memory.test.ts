import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ROOT } from '../helpers/paths.js';

/**
 * A fresh instance per evaluation must leave nothing behind. Before the worker had its own WASI, each
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
  collected: number;
  hosts: number;
  rssAfterWarmUp: number;
  rssAtEnd: number;
}

async function soak(): Promise<Soak> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--expose-gc', '--disable-warning=ExperimentalWarning', `${ROOT}dist/test/helpers/instance-soak.js`, TINYGO, String(EVALUATIONS)],
    { maxBuffer: 2 ** 20 },
  );
  return JSON.parse(stdout) as Soak;
}

describe("memory over many evaluations of Chainloop's TinyGo (WASI) policy", () => {
  let run: Soak;
  before(async () => {
    run = await soak();
  });

  it('gives every evaluation a new policy instance in one kept host and collects every used instance', () => {
    assert.equal(run.hosts, 1, 'one Extism host serves every evaluation of the same script and args');
    // One instance can stay alive: the one made ahead for the next evaluation.
    assert.ok(run.collected >= run.tracked - 2, `${run.collected} of ${run.tracked} instances collected`);
  });

  it('keeps RSS flat after warm-up', () => {
    const growth = run.rssAtEnd - run.rssAfterWarmUp;
    assert.ok(growth < MAX_GROWTH_BYTES, `RSS grew ${(growth / 2 ** 20).toFixed(1)} MiB over ${EVALUATIONS / 2} evaluations`);
  });
});
