/**
 * Run as a child process with --expose-gc (test/e2e/memory.test.ts): evaluates a policy module the way
 * a pool worker does, in a worker thread with the pool's resource limits, and prints, as JSON, what the
 * memory test asserts: how many policy instances its first evaluations used and how many of those
 * were collected, how many Extism hosts it made, and the RSS after warm-up and at the end. argv: module
 * path, evaluations, and `reset` (instances put back into their new state, as the module allows) or
 * `fresh` (a new instance per evaluation, as for a module that cannot be reset).
 */
import { readFileSync } from 'node:fs';
import { isMainThread, Worker } from 'node:worker_threads';
import { WORKER_RESOURCE_LIMITS } from '../../src/engine/pool.js';
import { compilePolicyModule } from '../../src/wasm/inspect.js';
import { GuestLogs } from '../../src/worker/guest-logs.js';
import { hostFor } from '../../src/worker/instances.js';
import runScript from '../../src/worker/run-script.js';
import { scriptTask } from '../../src/worker/task.js';

if (isMainThread) {
  new Worker(new URL(import.meta.url), { argv: process.argv.slice(2), resourceLimits: WORKER_RESOURCE_LIMITS, execArgv: [] });
} else {
  await soak();
}

async function soak(): Promise<void> {
  const [path, count, mode] = process.argv.slice(2) as [string, string, 'reset' | 'fresh'];
  const evaluations = Number(count);
  const gc = (globalThis as { gc?: () => void }).gc!;
  const facts = await compilePolicyModule(readFileSync(path), path, 256);
  const task = scriptTask(mode === 'reset' ? facts : { ...facts, reset: undefined }, {
    instanceKey: path,
    input: new TextEncoder().encode('{"a":1}'),
    policyName: 'soak',
    logLevel: 'error',
    maxOutputBytes: 2 ** 20,
    maxLogEntries: 100,
  });
  // Each evaluation is its own worker task, so the event loop turns between them (V8 frees wasm memories then).
  const nextTask = () => new Promise((resolve) => setImmediate(resolve));
  const settle = async () => {
    for (let i = 0; i < 4; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  // Every policy instance an evaluation used and no longer uses must become garbage; the host stays.
  let collected = 0;
  const registry = new FinalizationRegistry(() => collected++);
  const tracked = 100;
  const hosts = new Set<unknown>();
  const used = new WeakSet<object>();
  let instances = 0;
  for (let i = 0; i < tracked; i++) {
    const host = await hostFor(task);
    hosts.add(host);
    const instance = host.instance(task);
    if (!used.has(instance)) {
      used.add(instance);
      instances++;
      registry.register(instance.instance, i);
    }
    if (!(await host.execute(instance, { task, logs: new GuestLogs(10), httpStatus: 0, hostCalls: 0 }))) throw new Error('no output');
    await nextTask();
  }
  await settle();

  const warmUp = Math.floor(evaluations / 2);
  let rssAfterWarmUp = 0;
  for (let i = 0; i < evaluations; i++) {
    const outcome = await runScript(task);
    if (!outcome.ok) throw new Error(JSON.stringify(outcome.error));
    await nextTask();
    if (i + 1 === warmUp) {
      await settle();
      rssAfterWarmUp = process.memoryUsage().rss;
    }
  }
  await settle();
  console.log(JSON.stringify({ tracked, instances, collected, hosts: hosts.size, rssAfterWarmUp, rssAtEnd: process.memoryUsage().rss }));
}
