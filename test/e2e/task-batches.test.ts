import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ScriptPool } from '../../src/engine/pool.js';
import type { ScriptSetup } from '../../src/worker/protocol.js';
import type { PolicydError } from '../../src/errors/policyd-error.js';
import { ROOT } from '../helpers/paths.js';

/** The fixture worker answers with the setup id the pool names, and the size of the task that carried it. */
const labelled = (label: string) => ({ id: label }) as ScriptSetup;
const NO_CALL = { input: new Uint8Array(0), includeRawOutput: false, allowedHosts: [] };
const never = new AbortController().signal;

/** A pool of the fixture worker (one worker unless told), four calls to a task at most. */
async function withPool(body: (pool: ScriptPool) => Promise<void>, threads = 1): Promise<void> {
  const pool = new ScriptPool({
    threads,
    maxQueue: 16,
    callsPerTask: 4,
    workerFile: `${ROOT}test/fixtures/workers/reports-its-task.mjs`,
  });
  try {
    await body(pool);
  } finally {
    await pool.close();
  }
}

/** Submits the calls in one turn of the event loop, as a burst of requests arrives; the fixture answers strings. */
const burst = (pool: ScriptPool, labels: string[]) =>
  labels.map((label) => pool.run(NO_CALL, labelled(label), never) as unknown as Promise<string>);

describe('calls sent to the pool several to a task (engine/task-batches.ts)', () => {
  it('sends a lone call at once, alone, and the calls of the same turn together, split evenly', () =>
    withPool(async (pool) => {
      const answers = await Promise.all(burst(pool, ['0', '1', '2', '3', '4', '5', '6']));
      assert.deepEqual(answers, ['0 in a task of 1', ...['1', '2', '3', '4', '5', '6'].map((label) => `${label} in a task of 3`)]);
    }));

  it('holds a call for the others of its turn even when a worker is idle, once another call is in flight', () =>
    withPool(async (pool) => {
      // Two workers: the second call finds one idle, and still goes with the three after it (two tasks of two).
      const answers = await Promise.all(burst(pool, ['0', '1', '2', '3', '4']));
      assert.deepEqual(answers, ['0 in a task of 1', ...['1', '2', '3', '4'].map((label) => `${label} in a task of 2`)]);
    }, 2));

  it('returns unrun the calls of a task that has run past its budget, and runs them in tasks of their own', () =>
    withPool(async (pool) => {
      const answers = await Promise.all(burst(pool, ['slow-0', 'slow-1', 'slow-2', 'slow-3', 'slow-4', 'slow-5', 'slow-6']));
      // Each task's first call runs; the calls after it come back, since one slow call spends the budget.
      assert.deepEqual(answers, [
        'slow-0 in a task of 1',
        'slow-1 in a task of 3',
        'slow-2 in a task of 1',
        'slow-3 in a task of 1',
        'slow-4 in a task of 3',
        'slow-5 in a task of 1',
        'slow-6 in a task of 1',
      ]);
    }));

  it('sends again the calls of a task whose worker is lost, those it had finished too, but not the one it was running', () =>
    withPool(async (pool) => {
      const [first, finished, lost, waiting] = burst(pool, ['first', 'finished', 'die', 'waiting']);
      assert.equal(await first, 'first in a task of 1');
      await assert.rejects(lost!, (err: PolicydError) => err.reason === 'WORKER_LOST');
      // Their task (of three) died with its worker: each was answered by a task sent later.
      assert.match(await finished!, /^finished in a task of [12]$/);
      assert.match(await waiting!, /^waiting in a task of [12]$/);
    }));

  it('answers a call whose task function throws with the error, once (not sent again), and the others of its task', () =>
    withPool(async (pool) => {
      const [first, before, threw, after] = burst(pool, ['first', 'before', 'throw', 'after']);
      assert.equal(await first, 'first in a task of 1');
      await assert.rejects(threw!, (err: PolicydError) => err.reason === 'WORKER_LOST' && /the task function threw/.test(err.message));
      assert.match(await before!, /^before in a task of [123]$/);
      assert.match(await after!, /^after in a task of [123]$/);
    }));
});
