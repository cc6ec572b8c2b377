import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MaterialKind } from '../../src/gen/policyengine/v1/engine_pb.js';
import { killProcess, type ServeProcess, serveProcess } from '../helpers/serve-process.js';
import { wat } from '../helpers/wat.js';

const GUEST_MB = 96;
const EVALUATIONS = 24;

function rss(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!) * 1024;
}

/**
 * The daemon's flags turn off V8's own trigger for collecting external memory, so each thread's
 * GarbageBudget (src/runtime/garbage-budget.ts) is all that bounds the dead guest memories a worker
 * holds. A policy that grows and touches 96 MiB per evaluation, evaluated again and again: without the
 * budget the dead memories pile up to several hundred MiB before V8 collects them.
 */
describe('dead guest memory is collected', () => {
  let dir: string;
  let daemon: ServeProcess;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'policyd-garbage-'));
    daemon = await serveProcess(dir, ['--memory-limit-mb', String(GUEST_MB + 16)]);
    const pages = (GUEST_MB * 2 ** 20) / 65536;
    const toucher = await wat(`(module
      (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
      (memory (export "memory") 1)
      (func (export "Execute") (result i32) (local $p i32)
        (drop (memory.grow (i32.const ${pages})))
        (block $done (loop $touch
          (br_if $done (i32.ge_u (local.get $p) (i32.const ${pages * 65536})))
          (i32.store8 (local.get $p) (i32.const 1))
          (local.set $p (i32.add (local.get $p) (i32.const 4096)))
          (br $touch)))
        (i32.const 0)))`);
    await daemon.client.loadPolicy({ source: { case: 'wasmModule', value: toucher }, name: 'toucher', kinds: [MaterialKind.EVIDENCE] });
  });
  after(async () => {
    await killProcess(daemon);
    rmSync(dir, { recursive: true, force: true });
  });

  it(`holds at most a few dead ${GUEST_MB} MiB guest memories over ${EVALUATIONS} evaluations`, async () => {
    const pid = daemon.process.pid!;
    const start = rss(pid);
    let peak = start;
    for (let i = 0; i < EVALUATIONS; i++) {
      // The policy sets no output: each evaluation ends in an error, after the memory was touched.
      await daemon.client
        .evaluate({ policy: 'toucher', material: { content: Buffer.from('{}'), kind: MaterialKind.EVIDENCE } })
        .catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, 20));
      peak = Math.max(peak, rss(pid));
    }
    const grewMb = (peak - start) / 2 ** 20;
    console.log(`RSS peak ${grewMb.toFixed(0)} MiB above the start over ${EVALUATIONS} evaluations of ${GUEST_MB} MiB each`);
    assert.ok(grewMb < 4 * GUEST_MB, `RSS rose ${grewMb.toFixed(0)} MiB: dead guest memories are not being collected`);
  });
});
