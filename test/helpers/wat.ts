import wabtInit from 'wabt';

let wabt: Awaited<ReturnType<typeof wabtInit>> | undefined;

/** Assembles WebAssembly text into a module, for fixtures written inline in a test. */
export async function wat(text: string): Promise<Uint8Array> {
  wabt ??= await wabtInit();
  const module = wabt.parseWat('inline.wat', text);
  try {
    module.validate();
    return module.toBinary({}).buffer;
  } finally {
    module.destroy();
  }
}

/**
 * WAT of `$block(ptr, n) -> i64`: an Extism block holding guest memory [ptr, ptr+n). Needs the
 * `$alloc` and `$store_u8` imports of "extism:host/env".
 */
export const BLOCK_FUNCTION = `(func $block (param $ptr i32) (param $n i32) (result i64) (local $off i64) (local $i i32)
  (local.set $off (call $alloc (i64.extend_i32_u (local.get $n))))
  (block $done (loop $copy
    (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
    (call $store_u8 (i64.add (local.get $off) (i64.extend_i32_u (local.get $i))) (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
    (local.set $i (i32.add (local.get $i) (i32.const 1)))
    (br $copy)))
  (local.get $off))`;

function dataString(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => `\\${b.toString(16).padStart(2, '0')}`).join('');
}

export interface GuestBehaviour {
  /** Bytes passed to output_set; omitted: no output at all. */
  output?: string;
  /** Message passed to error_set before returning 1. */
  error?: string;
  /** Trap (unreachable) after everything else. */
  trap?: boolean;
  /** Value Execute returns. */
  returns?: number;
}

/** A guest that does exactly what it is told with the Extism kernel, nothing else. */
export function behaviourModule(b: GuestBehaviour): Promise<Uint8Array> {
  const out = Buffer.from(b.output ?? '', 'utf8');
  const err = Buffer.from(b.error ?? '', 'utf8');
  return wat(`(module
    (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
    (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
    (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
    (import "extism:host/env" "error_set" (func $error_set (param i64)))
    (memory (export "memory") 1)
    (data (i32.const 0) "${dataString(out)}")
    (data (i32.const 32768) "${dataString(err)}")
    ${BLOCK_FUNCTION}
    (func (export "Execute") (result i32)
      ${b.output !== undefined ? `(call $output_set (call $block (i32.const 0) (i32.const ${out.length})) (i64.const ${out.length}))` : ''}
      ${b.error !== undefined ? `(call $error_set (call $block (i32.const 32768) (i32.const ${err.length})))` : ''}
      ${b.trap ? 'unreachable' : ''}
      (i32.const ${b.returns ?? 0}))
  )`);
}
