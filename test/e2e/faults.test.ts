import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ScriptPool } from '../../src/engine/pool.js';
import type { ScriptTask } from '../../src/worker/protocol.js';
import type { PolicydError } from '../../src/errors/policyd-error.js';
import { status } from '@grpc/grpc-js';
import { ROOT } from '../helpers/paths.js';

describe('faults in the worker pool', () => {
  it('survives a worker that fails while idle: the error is reported, the worker replaced, the next task served', async () => {
    const errors: unknown[] = [];
    const pool = new ScriptPool({
      threads: 1,
      maxQueue: 1,
      workerFile: `${ROOT}test/fixtures/workers/fails-when-idle.mjs`,
      onWorkerError: (err) => errors.push(err),
    });
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

  it('answers an evaluation whose worker thread stops mid-way with UNAVAILABLE WORKER_LOST, and serves the next on a new worker', async () => {
    const pool = new ScriptPool({ threads: 1, maxQueue: 2, workerFile: `${ROOT}test/fixtures/workers/dies-mid-task.mjs` });
    const never = new AbortController().signal;
    try {
      const lost = pool.run('die' as unknown as ScriptTask, never);
      const queued = pool.run('queued' as unknown as ScriptTask, never);
      await assert.rejects(
        lost,
        (err: PolicydError) =>
          err.reason === 'WORKER_LOST' && err.code === status.UNAVAILABLE && /the worker running this evaluation stopped/.test(err.message),
      );
      assert.equal(await queued, 'queued', 'the queued task runs on the replacement');
      assert.equal(await pool.run('after' as unknown as ScriptTask, never), 'after');
    } finally {
      await pool.close();
    }
  });
});
