import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compilePolicyModule } from '../../src/wasm/inspect.js';
import { GuestLogs } from '../../src/worker/guest-logs.js';
import { Host, hostFor } from '../../src/worker/instances.js';
import type { ReadyTask } from '../../src/worker/protocol.js';
import { scriptTask } from '../../src/worker/task.js';
import { BLOCK_FUNCTION, wat } from '../helpers/wat.js';

/**
 * A guest that reports every piece of state it can observe at the start of Execute — its own globals
 * (i32 and i64), a linear-memory cell, memory.size, an Extism var, Extism block 0, which Extism blocks
 * exist, the last HTTP status, config, and whether its stdout descriptor is open — then changes each of
 * them as its input says: it grows its memory (reporting what memory.grow answers, failures at its
 * maximum included, and what the newest page holds), by 300 pages on bit 6, past what a kept instance
 * may keep, and traps after all its changes on bit 7. Its output is those observations as
 * little-endian i32s. `tableSet` adds a function (never called) that changes a table, which makes the
 * module one that cannot be reset.
 */
const observer = (tableSet: boolean) => `(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "var_get" (func $var_get (param i64) (result i64)))
  (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))
  (import "extism:host/env" "http_status_code" (func $http_status (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (memory (export "memory") 1 400)
  ${tableSet ? '(table 1 funcref) (func (table.set (i32.const 0) (ref.null func)))' : ''}
  (global $calls (mut i32) (i32.const 0))
  (global $wide (mut i64) (i64.const 0x100000001))
  (global $out (mut i32) (i32.const 1024))
  (data (i32.const 0) "k")
  (data (i32.const 8) "args")
  (func $emit (param $v i32) (i32.store (global.get $out) (local.get $v)) (global.set $out (i32.add (global.get $out) (i32.const 4))))
  ${BLOCK_FUNCTION}
  (func (export "Execute") (result i32) (local $op i32) (local $v i64) (local $i i32)
    (local.set $op (call $input_load_u8 (i64.const 0)))
    (call $emit (global.get $calls))
    (call $emit (i32.wrap_i64 (global.get $wide)))
    (call $emit (i32.wrap_i64 (i64.shr_u (global.get $wide) (i64.const 32))))
    (call $emit (i32.load (i32.const 100)))
    (call $emit (memory.size))
    (local.set $v (call $var_get (call $block (i32.const 0) (i32.const 1))))
    (call $emit (if (result i32) (i64.eqz (local.get $v)) (then (i32.const -1)) (else (call $load_u8 (local.get $v)))))
    (call $emit (call $load_u8 (i64.const 0)))
    ;; which of blocks 1..8 exist (length of a missing block is 0)
    (local.set $i (i32.const 1))
    (block $done (loop $blocks
      (br_if $done (i32.gt_u (local.get $i) (i32.const 8)))
      (call $emit (i32.wrap_i64 (call $length (i64.shl (i64.extend_i32_u (local.get $i)) (i64.const 48)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $blocks)))
    (call $emit (call $http_status))
    (call $emit (i32.wrap_i64 (call $length (call $config_get (call $block (i32.const 8) (i32.const 4))))))
    ;; stdout: iovec at 200 -> (0, 1), nwritten at 208
    (i32.store (i32.const 200) (i32.const 0)) (i32.store (i32.const 204) (i32.const 1))
    (call $emit (call $fd_write (i32.const 1) (i32.const 200) (i32.const 1) (i32.const 208)))
    ;; change everything
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (global.set $wide (i64.add (global.get $wide) (i64.const 0x300000007)))
    (i32.store (i32.const 100) (i32.add (i32.load (i32.const 100)) (local.get $op)))
    (call $store_u8 (i64.const 0) (local.get $op))
    (if (i32.and (local.get $op) (i32.const 1)) (then (call $var_set (call $block (i32.const 0) (i32.const 1)) (call $block (i32.const 100) (i32.const 1)))))
    (if (i32.and (local.get $op) (i32.const 2)) (then (call $emit (memory.grow (i32.const 1)))))
    (if (i32.and (local.get $op) (i32.const 32)) (then (call $emit (memory.grow (i32.const 398)))))
    (if (i32.and (local.get $op) (i32.const 64)) (then (call $emit (memory.grow (i32.const 300)))))
    (call $emit (memory.size))
    ;; the newest page: zero when new; then marked
    (local.set $i (i32.add (i32.mul (i32.sub (memory.size) (i32.const 1)) (i32.const 65536)) (i32.const 8)))
    (call $emit (i32.load (local.get $i)))
    (i32.store (local.get $i) (i32.add (local.get $op) (i32.const 1)))
    (if (i32.and (local.get $op) (i32.const 4)) (then (drop (call $fd_close (i32.const 1)))))
    (if (i32.and (local.get $op) (i32.const 8)) (then (drop (call $alloc (i64.const 16)))))
    ;; bit 7: trap, after changing everything
    (if (i32.and (local.get $op) (i32.const 128)) (then unreachable))
    (call $output_set (call $block (i32.const 1024) (i32.sub (global.get $out) (i32.const 1024))) (i64.extend_i32_u (i32.sub (global.get $out) (i32.const 1024))))
    (i32.const 0)))`;

async function observerTask(input: number, args?: string, tableSet = false): Promise<ReadyTask> {
  const facts = await compilePolicyModule(await wat(observer(tableSet)), 'observer', 512);
  return scriptTask(facts, {
    instanceKey: `observer${tableSet}`,
    input: new Uint8Array([input]),
    args,
    policyName: 'observer',
    logLevel: 'error',
    maxOutputBytes: 2 ** 20,
    maxLogEntries: 10,
  });
}

const hex = (bytes: Uint8Array | null) => Buffer.from(bytes ?? []).toString('hex');

/** One evaluation's observations, or the error it ended with (the guest traps on bit 7). */
const observe = (host: Host, task: ReadyTask): Promise<string> =>
  host
    .execute(host.instance(task), { task, logs: new GuestLogs(10), httpStatus: 0, hostCalls: 0 })
    .then(hex, (err: Error) => `error: ${err.message}`);

/** A small seeded generator, so a failure names a sequence that can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return s & 0xff;
  };
}

describe('isolation: a kept Extism host with an instance in its new state per evaluation is a new plugin per evaluation', () => {
  it('the observer sees its own changes when an instance is used twice (the probe is sensitive)', async () => {
    const task = await observerTask(15);
    const host = await Host.create(task, 2 ** 20);
    const instance = host.instance(task);
    const run = () => host.execute(instance, { task, logs: new GuestLogs(10), httpStatus: 0, hostCalls: 0 });
    assert.notEqual(hex(await run()), hex(await run()));
  });

  it('resets a used instance for the next evaluation, and drops one that grew more than it may keep', async () => {
    const task = await observerTask(0);
    assert.ok(task.reset, 'the observer is rewritten for reset');
    const host = await Host.create(task, 2 ** 20);
    const evaluate = async (op: number) => {
      const instance = host.instance(task);
      await host.execute(instance, {
        task: { ...task, input: new Uint8Array([op]) },
        logs: new GuestLogs(10),
        httpStatus: 0,
        hostCalls: 0,
      });
      host.prepare(task);
      return instance;
    };
    const first = await evaluate(2);
    assert.equal(await evaluate(2), first, 'reset, not made again');
    assert.equal(await evaluate(64), first);
    assert.notEqual(await evaluate(2), first, 'grew by 300 pages: dropped');
  });

  it('keeps a new instance per evaluation for a module that changes a table', async () => {
    const task = await observerTask(0, undefined, true);
    assert.equal(task.reset, undefined);
    const facts = await compilePolicyModule(await wat(observer(true)), 'observer', 512);
    assert.match(facts.resetRefused ?? '', /changes a table/);
  });

  const seed = Number(process.env.ISOLATION_SEED ?? 20261126);
  for (const tableSet of [false, true]) {
    it(`gives byte-identical observations to new plugins over a random sequence of 300 evaluations (seed ${seed}${tableSet ? ', a module that cannot be reset' : ''})`, async () => {
      const next = random(seed);
      for (let step = 0; step < 300; step++) {
        const op = next();
        const args = op & 0x10 ? '{"a":"b"}' : undefined;
        const task = await observerTask(op, args, tableSet);
        const kept = await hostFor(task);
        const seen = await observe(kept, task);
        setImmediate(() => kept.prepare(task));
        const fresh = await Host.create(task, 2 ** 20);
        const expected = await observe(fresh, task);
        fresh.close();
        assert.equal(seen, expected, `step ${step}, op ${op}`);
        await new Promise((resolve) => setImmediate(resolve));
      }
    });
  }
});
