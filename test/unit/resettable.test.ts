import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { skipValueType } from '../../src/wasm/binary.js';
import { capMemory } from '../../src/wasm/memory-limit.js';
import { RESET_EXPORT_PREFIX, makeResettable } from '../../src/wasm/resettable.js';
import { wat } from '../helpers/wat.js';

type Exports = Record<string, (...args: number[]) => number>;

/** Both builds of one module: as written, and rewritten for reset (which must be possible). */
async function both(text: string, capPages = 10): Promise<{ original: Exports; rewritten: Exports; instance: WebAssembly.Instance }> {
  const bytes = capMemory(await wat(text), capPages, 'test');
  const made = makeResettable(bytes, 'test');
  assert.ok(made.plan, `rewritten (${made.plan ? '' : made.why})`);
  const instance = new WebAssembly.Instance(new WebAssembly.Module(made.module));
  return {
    original: new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as Exports,
    rewritten: instance.exports as Exports,
    instance,
  };
}

const refusal = async (text: string) => {
  const made = makeResettable(await wat(text), 'test');
  assert.equal(made.plan, undefined);
  return made.plan ? '' : made.why;
};

describe('modules rewritten for reset (src/wasm/resettable.ts)', () => {
  it('memory.grow and memory.size answer as the real ones would, up to the maximum and past it', async () => {
    const { original, rewritten, instance } = await both(
      `(module (memory (export "memory") 1 20)
      (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
      (func (export "size") (result i32) (memory.size)))`,
      20,
    );
    for (const n of [0, 1, 2, 0, 5, 3, 100, -1, 0x7fffffff, 1, 7, 1, 1, 0]) {
      assert.equal(rewritten.grow!(n), original.grow!(n), `grow(${n})`);
      assert.equal(rewritten.size!(), original.size!(), `size after grow(${n})`);
    }
    assert.equal(original.size!(), 20, 'the sequence reaches the maximum');
    const size = instance.exports[`${RESET_EXPORT_PREFIX}size`] as WebAssembly.Global;
    size.value = 1;
    assert.equal(rewritten.size!(), 1, 'the size the guest sees is the exported global');
    assert.equal(rewritten.grow!(2), 1);
    assert.equal((instance.exports.memory as WebAssembly.Memory).buffer.byteLength, 20 * 65536, 'the real memory did not grow again');
  });

  it('exports every mutable global and the memory, and changes nothing else a guest computes', async () => {
    // Immediates that hold the bytes of memory.size (0x3f 0x00) and memory.grow (0x40 0x00) must be
    // copied, not rewritten: every instruction is decoded.
    const { original, rewritten, instance } = await both(`(module (memory 1 4)
      (global $a (mut i32) (i32.const 63)) (global $b (mut i64) (i64.const 64)) (global $c f64 (f64.const 0.5))
      (table 2 funcref) (elem (i32.const 0) $one $two) (type $t (func (result i32)))
      (func $one (result i32) (i32.const 0x3f00)) (func $two (result i32) (i32.const 0x40))
      (func (export "run") (param $x i32) (result i32) (local $v v128)
        (local.set $v (v128.const i32x4 0x3f 0x40 0x003f0000 0x00400000))
        (memory.fill (i32.const 16) (i32.const 0x3f) (i32.const 8))
        (memory.copy (i32.const 64) (i32.const 16) (i32.const 8))
        (block $b2 (block $b1 (block $b0 (br_table $b0 $b1 $b2 (local.get $x))) (return (i32.const 63))) (return (i32.const 64)))
        (i32.add (i32.add (call_indirect (type $t) (i32.and (local.get $x) (i32.const 1))) (i32.load8_u offset=0x3f (i32.const 1)))
          (i32.add (i32.trunc_f32_s (f32.const 0x3f00)) (i32x4.extract_lane 3 (local.get $v)))))
      (func (export "globals") (result i32) (global.set $a (i32.add (global.get $a) (i32.const 1))) (global.get $a)))`);
    for (const x of [0, 1, 2, 3, 4]) assert.equal(rewritten.run!(x), original.run!(x), `run(${x})`);
    assert.equal(rewritten.globals!(), original.globals!());
    assert.deepEqual(
      Object.keys(instance.exports).filter((name) => name.startsWith(RESET_EXPORT_PREFIX)),
      [`${RESET_EXPORT_PREFIX}global.0`, `${RESET_EXPORT_PREFIX}global.1`, `${RESET_EXPORT_PREFIX}size`, `${RESET_EXPORT_PREFIX}memory`],
      'the two mutable globals and the size, not the constant; the memory, which the module did not export',
    );
  });

  it('refuses what it cannot put back exactly, saying why', async () => {
    assert.match(
      await refusal(
        '(module (table 1 funcref) (func (table.set (i32.const 0) (ref.null func))) (global (mut i32) (i32.const 0)) (memory 1) (export "m" (memory 0)))',
      ),
      /changes a table/,
    );
    assert.match(
      await refusal('(module (memory 1) (data "x") (global (mut i32) (i32.const 0)) (func (data.drop 0)) (export "m" (memory 0)))'),
      /drops a data segment/,
    );
    assert.match(
      await refusal('(module (memory 1) (global (mut v128) (v128.const i64x2 0 0)) (func) (export "m" (memory 0)))'),
      /mutable global JavaScript cannot write back/,
    );
    assert.match(
      await refusal(`(module (memory 1) (global (mut i32) (i32.const 0)) (func) (export "${RESET_EXPORT_PREFIX}x" (func 0)))`),
      /already exports/,
    );
  });

  it('leaves a module it cannot decode to the compiler', async () => {
    const broken = Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 10, 0x20, 0x01]);
    const made = makeResettable(broken, 'test');
    assert.equal(made.module, broken);
    assert.match(made.plan ? '' : made.why, /could not be decoded/);
  });

  // Found by test/e2e/fuzz.test.ts: a mutated count held the main thread for minutes, walking bytes that
  // are not there. Each case fails at once, or hangs until the timeout.
  it('gives up at once on counts larger than the bytes that follow them', { timeout: 10_000 }, () => {
    const header = [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0];
    const huge = [0xff, 0xff, 0xff, 0xff, 0x0f];
    const cases = {
      'a function type with 2^32-1 parameters': [1, 0x60, ...huge],
      'a type section of 2^32-1 entries': [...huge, 0x60, 0, 0],
    };
    for (const [what, content] of Object.entries(cases)) {
      const made = makeResettable(Uint8Array.from([...header, 1, content.length, ...content]), 'test');
      assert.match(made.plan ? '' : made.why, /could not be decoded/, what);
    }
    // What bounds the first case: reading a value type past the end is an error, not a loop of 2^32 steps.
    assert.throws(() => skipValueType(Uint8Array.of(), 0), /truncated value type/);
  });
});
