import wabtInit from 'wabt';

/**
 * Bench inputs made here rather than committed: CycloneDX SBOMs of a given size and a
 * TinyGo-sized (~800 KB) policy module.
 */

/** A real-shaped CycloneDX 1.5 SBOM of about `bytes` bytes. */
export function cyclonedx(bytes: number): Buffer {
  const components: object[] = [];
  let size = 400;
  for (let i = 0; size < bytes; i++) {
    const c = {
      type: 'library',
      'bom-ref': `pkg:npm/component-${i}@1.${i % 10}.${i % 7}`,
      name: `component-${i}`,
      version: `1.${i % 10}.${i % 7}`,
      purl: `pkg:npm/component-${i}@1.${i % 10}.${i % 7}`,
      licenses: [{ license: { id: i % 13 === 0 ? 'Apache-2.0' : 'MIT' } }],
      hashes: [{ alg: 'SHA-256', content: (i * 2654435761).toString(16).padStart(64, '0').slice(0, 64) }],
    };
    size += JSON.stringify(c).length + 1;
    components.push(c);
  }
  return Buffer.from(
    JSON.stringify({
      bomFormat: 'CycloneDX',
      specVersion: '1.5',
      serialNumber: 'urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79',
      version: 1,
      metadata: { timestamp: '2026-11-25T00:00:00Z', component: { type: 'application', name: 'shop-api', version: '2.4.0' } },
      components,
    }),
  );
}

const OUTPUT = '{"skipped":false,"violations":[],"skip_reason":"","ignore":false}';

/**
 * A policy module of roughly `targetBytes`: a trivial Execute (it reads its input length and writes a
 * fixed result, like Chainloop's simple test policy) plus generated functions with real control flow
 * and arithmetic, and a data segment — what makes a TinyGo module big is code and data, and code is
 * what a runtime must compile.
 */
export async function bigModule(targetBytes = 800_000): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const functions: string[] = [];
  const body = (i: number) => `
  (func $f${i} (param $a i32) (param $b i32) (result i32) (local $i i32) (local $acc i32)
    (local.set $acc (i32.const ${i}))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $b)))
      (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 31)) (i32.xor (local.get $a) (local.get $i))))
      (if (i32.and (local.get $acc) (i32.const ${(i % 7) + 1}))
        (then (local.set $acc (i32.rotl (local.get $acc) (i32.const ${i % 31}))))
        (else (local.set $acc (i32.sub (local.get $acc) (i32.load (i32.and (local.get $i) (i32.const 4092)))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.get $acc))`;
  const data = 'x'.repeat(Math.floor(targetBytes * 0.15));
  let n = 0;
  let estimate = data.length;
  while (estimate < targetBytes) {
    functions.push(body(n++));
    estimate += 80;
  }
  const out = Buffer.from(OUTPUT);
  const text = `(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (memory (export "memory") ${2 + Math.ceil(data.length / 65536)})
  (table ${n} funcref)
  (elem (i32.const 0) ${Array.from({ length: n }, (_, i) => `$f${i}`).join(' ')})
  (data (i32.const 65536) "${data}")
  (data (i32.const 1024) "${out.toString().replace(/"/g, '\\"')}")
  ${functions.join('\n')}
  (func (export "Execute") (result i32) (local $o i64) (local $i i32)
    (drop (call $input_length))
    (local.set $o (call $alloc (i64.const ${out.length})))
    (block $done (loop $copy
      (br_if $done (i32.ge_u (local.get $i) (i32.const ${out.length})))
      (call $store_u8 (i64.add (local.get $o) (i64.extend_i32_u (local.get $i))) (i32.load8_u (i32.add (i32.const 1024) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $copy)))
    (call $output_set (local.get $o) (i64.const ${out.length}))
    (i32.const 0)))`;
  const module = wabt.parseWat('big.wat', text);
  module.validate();
  const bytes = module.toBinary({}).buffer;
  module.destroy();
  return bytes;
}

/** The same module made distinct by a custom section (a different digest; V8 cannot reuse its code cache). */
export function withCustomSection(module: Uint8Array, tag: string): Uint8Array {
  const name = Buffer.from('policyd-bench');
  const payload = Buffer.from(tag);
  const content = Buffer.concat([Buffer.from([name.length]), name, payload]);
  const size: number[] = [];
  let v = content.length;
  do {
    size.push((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>>= 7;
  } while (v > 0);
  return Buffer.concat([module, Buffer.from([0, ...size]), content]);
}
