import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ScriptPool } from '../../src/engine/pool.js';
import type { ScriptSetup } from '../../src/worker/protocol.js';
import type { PolicydError } from '../../src/errors/policyd-error.js';
import { status } from '@grpc/grpc-js';
import { ROOT } from '../helpers/paths.js';

/** The fixture workers answer with the setup id the pool names: a label for each task. */
const labelled = (label: string | number) => ({ id: String(label) }) as ScriptSetup;
const NO_CALL = { input: new Uint8Array(0), includeRawOutput: false, allowedHosts: [] };

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
      assert.equal(await pool.run(NO_CALL, labelled(1), never), '1');
      while (errors.length === 0) await new Promise((r) => setTimeout(r, 10));
      assert.match(String(errors[0]), /worker failed while idle after task 1/);
      assert.equal(await pool.run(NO_CALL, labelled(2), never), '2');
    } finally {
      await pool.close();
    }
  });

  it('answers an evaluation whose worker thread stops mid-way with UNAVAILABLE WORKER_LOST, and serves the next on a new worker', async () => {
    const pool = new ScriptPool({ threads: 1, maxQueue: 2, workerFile: `${ROOT}test/fixtures/workers/dies-mid-task.mjs` });
    const never = new AbortController().signal;
    try {
      const lost = pool.run(NO_CALL, labelled('die'), never);
      const queued = pool.run(NO_CALL, labelled('queued'), never);
      await assert.rejects(
        lost,
        (err: PolicydError) =>
          err.reason === 'WORKER_LOST' && err.code === status.UNAVAILABLE && /the worker running this evaluation stopped/.test(err.message),
      );
      assert.equal(await queued, 'queued', 'the queued task runs on the replacement');
      assert.equal(await pool.run(NO_CALL, labelled('after'), never), 'after');
    } finally {
      await pool.close();
    }
  });
});
