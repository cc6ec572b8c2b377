import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ROOT } from '../helpers/paths.js';

/**
 * Every evaluation of a WASI policy allocates wasm memory, and V8 answers that external memory with a
 * full mark-compact of the worker's heap every few hundred evaluations; what the worker's modules put
 * on its heap is marked each time. Loading all of grpc-js for its status codes took 3 MB of a 9 MB
 * heap and ~15 % of the daemon's CPU per evaluation (bench/RESULTS.md).
 */
describe('pool worker footprint', () => {
  it('loads only the CommonJS packages an evaluation needs (no gRPC stack)', async () => {
    const source = `import { createRequire } from 'node:module';
      import { parentPort } from 'node:worker_threads';
      await import(${JSON.stringify(pathToFileURL(`${ROOT}dist/src/worker/entry.js`).href)});
      parentPort.postMessage(Object.keys(createRequire(${JSON.stringify(ROOT)}).cache));`;
    const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(source)}`));
    const [loaded] = (await once(worker, 'message')) as [string[]];
    await worker.terminate();
    const packages = loaded.filter((f) => f.includes('/node_modules/')).map((f) => f.slice(f.lastIndexOf('/node_modules/') + 14));
    assert.deepEqual(packages, ['@grpc/grpc-js/build/src/constants.js']);
  });
});
