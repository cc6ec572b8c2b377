import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ScriptPool } from '../../src/engine/pool.js';
import type { ScriptTask } from '../../src/worker/protocol.js';
import { ROOT } from '../helpers/paths.js';

describe('faults in the worker pool', () => {
  it('survives a worker that fails while idle: the error is reported, the worker replaced, the next task served', async () => {
    const errors: unknown[] = [];
    const pool = new ScriptPool({ threads: 1, maxQueue: 1, workerFile: `${ROOT}test/fixtures/workers/fails-when-idle.mjs`, onWorkerError: (err) => errors.push(err) });
    const never = new AbortController().signal;
    try {
      assert.equal(await pool.run(1 as unknown as ScriptTask, never), 1);
      while (errors.length === 0) await new Promise((r) => setTimeout(r, 10));
      assert.match(String(errors[0]), /worker failed while idle after task 1/);
      assert.equal(await pool.run(2 as unknown as ScriptTask, never), 2);
    } finally {
      await pool.close();
    }
  });
});
