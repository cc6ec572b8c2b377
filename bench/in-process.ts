import createPlugin from '@extism/extism';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { Latencies } from './stats.js';
import { createRequire } from 'node:module';

export interface InProcessResult {
  calls: number;
  throughput: number;
  p50: number;
  p90: number;
  p99: number;
}

/**
 * The policy called directly through @extism/extism in this thread: no gRPC, no pool. `fresh`
 * creates a plugin from the compiled module for every call (the daemon's isolation); otherwise one
 * plugin is reused.
 */
export async function rawInProcess(
  module: WebAssembly.Module,
  input: Uint8Array,
  durationMs: number,
  fresh: boolean,
): Promise<InProcessResult> {
  const latencies = new Latencies();
  const make = () => createPlugin({ wasm: [{ module }] }, { useWasi: false, runInWorker: false });
  const reused = fresh ? undefined : await make();
  const start = performance.now();
  let calls = 0;
  while (performance.now() - start < durationMs) {
    const t = performance.now();
    const plugin = reused ?? (await make());
    const out = await plugin.call('Execute', input);
    if (!out) throw new Error('no output');
    if (fresh) void plugin.close();
    latencies.record(performance.now() - t);
    calls++;
  }
  const seconds = (performance.now() - start) / 1000;
  await reused?.close();
  const { p50, p90, p99 } = latencies.summary();
  return { calls, throughput: calls / seconds, p50, p90, p99 };
}

const BASELINE_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { performance } = require('node:perf_hooks');
const createPlugin = require(workerData.extism);
(async () => {
  const { module, input, durationMs, thread } = workerData;
  const end = performance.now() + durationMs;
  let calls = 0;
  while (performance.now() < end) {
    // Unique bytes every time (a custom section holding thread and call number): V8 caches compiled
    // modules by their bytes within a process, and Chainloop's engine (a fresh wazero runtime per
    // evaluation) has no cache at all.
    const tag = Buffer.from([0, 9, 1, 0x75, thread, calls & 255, (calls >> 8) & 255, (calls >> 16) & 255, (calls >>> 24) & 255, 0, 0]);
    const compiled = await WebAssembly.compile(Buffer.concat([module, tag]));
    const plugin = await createPlugin({ wasm: [{ module: compiled }] }, { useWasi: workerData.wasi });
    await plugin.call('Execute', input);
    await plugin.close();
    calls++;
  }
  parentPort.postMessage(calls);
})();
`;

/**
 * Chainloop's engine, reproduced in Node: compile + instantiate + call for every evaluation, on as
 * many threads as the daemon has workers (Chainloop evaluates attachments in parallel).
 */
export async function chainloopBaseline(
  module: Uint8Array,
  input: Uint8Array,
  durationMs: number,
  threads: number,
  wasi = false,
): Promise<{ throughput: number }> {
  const extism = createRequire(import.meta.url).resolve('@extism/extism');
  const start = performance.now();
  const counts = await Promise.all(
    Array.from(
      { length: threads },
      (_, thread) =>
        new Promise<number>((resolve, reject) => {
          const w = new Worker(BASELINE_WORKER, { eval: true, workerData: { module, input, durationMs, thread, extism, wasi } });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    ),
  );
  const seconds = (performance.now() - start) / 1000;
  return { throughput: counts.reduce((a, b) => a + b, 0) / seconds };
}
