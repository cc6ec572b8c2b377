import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WASI_MODULE } from '../../src/wasm/host-surface.js';
import { capMemory } from '../../src/wasm/memory-limit.js';
import { INITIALIZE_EXPORT, WASI_HOST_MODULE, privateWasi } from '../../src/wasm/wasi-namespace.js';
import { GuestWasi, WASIProcExit } from '../../src/worker/wasi.js';
import { chainloopFixture, fixture } from '../helpers/paths.js';
import { wat } from '../helpers/wat.js';

const importsOf = (bytes: Uint8Array) => WebAssembly.Module.imports(new WebAssembly.Module(bytes));
const exportNames = (bytes: Uint8Array) => WebAssembly.Module.exports(new WebAssembly.Module(bytes)).map((e) => e.name);
const ERRNO_BADF = 8;

describe('WASI namespace rewrite (why: src/wasm/wasi-namespace.ts)', () => {
  const tinygo = chainloopFixture('simple_test_policy');

  it("moves every WASI import of Chainloop's TinyGo policy to the daemon's namespace, keeping names and order", () => {
    const before = importsOf(tinygo);
    const after = importsOf(privateWasi(tinygo, 'tinygo'));
    assert.equal(after.filter((i) => i.module === WASI_MODULE).length, 0, 'nothing left for the SDK to give Node\'s WASI');
    assert.deepEqual(after.map((i) => [i.module === WASI_HOST_MODULE ? WASI_MODULE : i.module, i.name, i.kind]), before.map((i) => [i.module, i.name, i.kind]));
    assert.ok(after.some((i) => i.module === WASI_HOST_MODULE && i.name === 'fd_write'));
  });

  it('renames _start and _initialize so the SDK runs neither while instantiating; other exports stay', async () => {
    const reactor = await wat(`(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
      (memory (export "memory") 1) (func (export "_initialize")) (func (export "_start")) (func (export "Execute") (result i32) (i32.const 0)))`);
    assert.deepEqual(exportNames(privateWasi(reactor, 'reactor')), ['memory', INITIALIZE_EXPORT, 'policyd:_start', 'Execute']);
    assert.ok(exportNames(privateWasi(tinygo, 'tinygo')).includes('Execute'));
  });

  it('leaves a module that imports no WASI byte for byte as it was', () => {
    const echo = fixture('echo');
    assert.equal(privateWasi(echo, 'echo'), echo);
  });

  it('keeps imports of every kind intact around the renamed ones', async () => {
    const mixed = await wat(`(module
      (import "env" "t" (table 1 2 funcref)) (import "env" "m" (memory 1 3)) (import "env" "g" (global (mut i32)))
      (import "wasi_snapshot_preview1" "random_get" (func (param i32 i32) (result i32)))
      (import "env" "f" (func (param i64) (result i64))))`);
    assert.deepEqual(importsOf(privateWasi(mixed, 'mixed')).map((i) => `${i.module}.${i.name}:${i.kind}`), [
      'env.t:table', 'env.m:memory', 'env.g:global', `${WASI_HOST_MODULE}.random_get:function`, 'env.f:function',
    ]);
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
    const bytes = privateWasi(await wat(`(module
      (import "wasi_snapshot_preview1" "args_sizes_get" (func $args (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (global $initialized (export "initialized") (mut i32) (i32.const 0))
      (func (export "_initialize") (global.set $initialized (i32.const 1)))
      ${body})`), 'guest');
    const host = wasi.hostFunctions()[WASI_HOST_MODULE]!;
    // The SDK calls host functions with its CallContext first.
    const imports = { [WASI_HOST_MODULE]: Object.fromEntries(Object.entries(host).map(([n, f]) => [n, f.bind(null, {} as never)])) };
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), imports);
    wasi.attach(inst);
    return inst;
  }

  it('runs _initialize on attach and shows no arguments, no environment, no preopened directory', async () => {
    const inst = await instance(new GuestWasi(), `
      (func (export "probe") (result i32 i32 i32 i32 i32)
        (drop (call $args (i32.const 0) (i32.const 4))) (drop (call $env (i32.const 8) (i32.const 12)))
        (i32.load (i32.const 0)) (i32.load (i32.const 8)) (i32.load (i32.const 12))
        (call $prestat (i32.const 3) (i32.const 16))
        ;; stdout accepts and drops 5 bytes: iovec at 32 -> (64, 5), nwritten at 40
        (i32.store (i32.const 32) (i32.const 64)) (i32.store (i32.const 36) (i32.const 5))
        (drop (call $write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 40))) (i32.load (i32.const 40)))`);
    assert.equal((inst.exports.initialized as { value: number }).value, 1);
    assert.deepEqual((inst.exports.probe as () => number[])(), [0, 0, 0, ERRNO_BADF, 5]);
  });

  it('turns proc_exit into a WASIProcExit carrying the code', async () => {
    const inst = await instance(new GuestWasi(), '(func (export "quit") (call $exit (i32.const 3)))');
    assert.throws(() => (inst.exports.quit as () => void)(), (err: unknown) => err instanceof WASIProcExit && err.code === 3);
  });
});
