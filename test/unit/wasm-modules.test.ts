import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WASI_FUNCTIONS, WASI_MODULE, isDaemonServed, isProvided } from '../../src/wasm/host-surface.js';
import { capMemory } from '../../src/wasm/memory-limit.js';
import { DAEMON_HOST_MODULE, PROXY_EXECUTE, PROXY_EXECUTE_MODULE, hostProxy } from '../../src/wasm/host-proxy.js';
import { GuestWasi, WASIProcExit } from '../../src/worker/wasi.js';
import { chainloopFixture } from '../helpers/paths.js';
import { wat } from '../helpers/wat.js';

const importsOf = (bytes: Uint8Array) => WebAssembly.Module.imports(new WebAssembly.Module(bytes));
const exportNames = (bytes: Uint8Array) => WebAssembly.Module.exports(new WebAssembly.Module(bytes)).map((e) => e.name);
const ERRNO_BADF = 8;

describe('host proxy (why: src/wasm/host-proxy.ts)', () => {
  const tinygo = chainloopFixture('simple_test_policy');

  it("imports every non-WASI function Chainloop's TinyGo policy imports, with the same names and types, and re-exports each", () => {
    const { module, proxied } = hostProxy(tinygo, 'tinygo', isDaemonServed);
    const expected = importsOf(tinygo)
      .filter((i) => i.module !== WASI_MODULE)
      .map((i) => ({ module: i.module, name: i.name }));
    assert.deepEqual(proxied, expected);
    assert.ok(expected.some((i) => i.module === 'extism:host/env' && i.name === 'output_set'));
    assert.deepEqual(
      importsOf(module).map((i) => ({ module: i.module, name: i.name })),
      [...expected, { module: PROXY_EXECUTE_MODULE, name: PROXY_EXECUTE }],
    );
    assert.deepEqual(exportNames(module), [...expected.map((_, i) => String(i)), PROXY_EXECUTE]);
  });

  it('links: a policy instantiated against the re-exported functions calls the host through them', async () => {
    const policy = await wat(`(module (import "extism:host/env" "length" (func $length (param i64) (result i64)))
      (import "wasi_snapshot_preview1" "sched_yield" (func (result i32)))
      (import "env" "chainloop_discover" (func $discover (param i64 i64) (result i64)))
      (func (export "Execute") (result i32) (i32.wrap_i64 (i64.add (call $length (i64.const 7)) (call $discover (i64.const 1) (i64.const 2))))))`);
    const { module } = hostProxy(policy, 'policy', isDaemonServed);
    const seen: bigint[] = [];
    // The kernel's function comes from the SDK's namespace; the daemon's own (discover) from the daemon's.
    const proxy = new WebAssembly.Instance(new WebAssembly.Module(module), {
      'extism:host/env': {
        length: (n: bigint) => {
          seen.push(n);
          return n * 2n;
        },
      },
      [DAEMON_HOST_MODULE]: { chainloop_discover: (a: bigint, b: bigint) => a + b + 100n },
      [PROXY_EXECUTE_MODULE]: { [PROXY_EXECUTE]: () => {} },
    });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(policy), {
      'extism:host/env': { length: proxy.exports['0'] },
      env: { chainloop_discover: proxy.exports['1'] },
      wasi_snapshot_preview1: { sched_yield: () => 0 },
    });
    assert.equal((instance.exports.Execute as () => number)(), 14 + 103);
    assert.deepEqual(seen, [7n]);
  });

  it('works for a policy with no host imports at all', async () => {
    const { module, proxied } = hostProxy(
      await wat('(module (func (export "Execute") (result i32) (i32.const 0)))'),
      'bare',
      isDaemonServed,
    );
    assert.deepEqual(proxied, []);
    assert.deepEqual(exportNames(module), [PROXY_EXECUTE]);
  });
});

describe('memory cap rewrite', () => {
  it('sets a maximum on a memory that had none, so growing past the cap fails', async () => {
    const bytes = capMemory(await wat('(module (memory (export "memory") 1))'), 2, 'uncapped');
    const memory = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports.memory as WebAssembly.Memory;
    assert.equal(memory.grow(1), 1);
    assert.throws(() => memory.grow(1), RangeError);
  });

  it('keeps a lower maximum and refuses a minimum above the cap', async () => {
    const low = capMemory(await wat('(module (memory (export "memory") 1 1))'), 8, 'low');
    const memory = new WebAssembly.Instance(new WebAssembly.Module(low)).exports.memory as WebAssembly.Memory;
    assert.throws(() => memory.grow(1), RangeError);
    assert.throws(() => capMemory(Buffer.from(low), 0, 'big'), /declares 1 pages .* more than the 0 MiB memory limit/);
  });
});

describe("the worker's WASI", () => {
  async function instance(wasi: GuestWasi, body: string) {
    const bytes = await wat(`(module
      (import "wasi_snapshot_preview1" "args_sizes_get" (func $args (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      ${body})`);
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { [WASI_MODULE]: wasi.imports });
    wasi.attach(inst);
    return inst;
  }

  it('shows no arguments, no environment, no preopened directory, and drops what is written to stdout', async () => {
    const inst = await instance(
      new GuestWasi(),
      `
      (func (export "probe") (result i32 i32 i32 i32 i32)
        (drop (call $args (i32.const 0) (i32.const 4))) (drop (call $env (i32.const 8) (i32.const 12)))
        (i32.load (i32.const 0)) (i32.load (i32.const 8)) (i32.load (i32.const 12))
        (call $prestat (i32.const 3) (i32.const 16))
        ;; stdout accepts and drops 5 bytes: iovec at 32 -> (64, 5), nwritten at 40
        (i32.store (i32.const 32) (i32.const 64)) (i32.store (i32.const 36) (i32.const 5))
        (drop (call $write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 40))) (i32.load (i32.const 40)))`,
    );
    assert.deepEqual((inst.exports.probe as () => number[])(), [0, 0, 0, ERRNO_BADF, 5]);
  });

  it('serves every WASI function a module may import (what the load check accepts)', () => {
    const served = Object.keys(new GuestWasi().imports);
    assert.ok(WASI_FUNCTIONS.size >= 46);
    for (const name of WASI_FUNCTIONS) assert.ok(served.includes(name) && isProvided(WASI_MODULE, name), name);
  });

  it('turns proc_exit into a WASIProcExit carrying the code', async () => {
    const inst = await instance(new GuestWasi(), '(func (export "quit") (call $exit (i32.const 3)))');
    assert.throws(
      () => (inst.exports.quit as () => void)(),
      (err: unknown) => err instanceof WASIProcExit && err.code === 3,
    );
  });
});
