import { PolicydError } from '../errors/policyd-error.js';

/**
 * Caps a module's linear memory by rewriting the maximum in its memory section before it is
 * compiled. @extism/extism's `memory.maxPages` only bounds the SDK's own blocks, not the guest's
 * memory, so without this a guest could grow to 4 GiB whatever the host says.
 */

export const PAGE_BYTES = 64 * 1024;
const MEMORY_SECTION = 5;

function readU32(bytes: Uint8Array, at: number): [value: number, next: number] {
  let value = 0;
  let shift = 0;
  let i = at;
  for (;;) {
    if (i >= bytes.length) throw new Error('truncated LEB128');
    const b = bytes[i++]!;
    value += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return [value, i];
    shift += 7;
    if (shift > 35) throw new Error('LEB128 too long');
  }
}

function writeU32(value: number): number[] {
  const out: number[] = [];
  let v = value;
  do {
    let b = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
  return out;
}

export interface MemoryCap {
  /** The module as it will be compiled. */
  bytes: Uint8Array;
  /** Declared minimum of the (first) memory, in pages; 0 when the module has none. */
  minPages: number;
}

/** Returns the module with every memory's maximum set to at most `capPages`. */
export function capMemory(module: Uint8Array, capPages: number, label: string): MemoryCap {
  let at = 8;
  while (at < module.length) {
    const id = module[at]!;
    const [size, contentStart] = readU32(module, at + 1);
    const end = contentStart + size;
    if (end > module.length) throw new PolicydError('INVALID_MODULE', `${label} does not compile: section ${id} runs past the end`);
    if (id !== MEMORY_SECTION) {
      at = end;
      continue;
    }
    let [count, p] = readU32(module, contentStart);
    const content: number[] = [...writeU32(count)];
    let minPages = 0;
    while (count-- > 0) {
      const flags = module[p++]!;
      if (flags & 0x04) throw new PolicydError('INVALID_MODULE', `${label} declares a 64-bit memory, which is not supported`);
      const [min, afterMin] = readU32(module, p);
      p = afterMin;
      let max = Number.POSITIVE_INFINITY;
      if (flags & 0x01) [max, p] = readU32(module, p);
      if (min > capPages) {
        throw new PolicydError(
          'POLICY_MEMORY',
          `${label} declares ${min} pages (${(min * PAGE_BYTES) / 2 ** 20} MiB) of initial memory, more than the ${(capPages * PAGE_BYTES) / 2 ** 20} MiB memory limit`,
        );
      }
      minPages ||= min;
      content.push(flags | 0x01, ...writeU32(min), ...writeU32(Math.min(max, capPages)));
    }
    if (p !== end) throw new PolicydError('INVALID_MODULE', `${label} does not compile: malformed memory section`);
    const out = new Uint8Array(at + 1 + writeU32(content.length).length + content.length + (module.length - end));
    out.set(module.subarray(0, at + 1), 0);
    const header = writeU32(content.length);
    out.set(header, at + 1);
    out.set(content, at + 1 + header.length);
    out.set(module.subarray(end), at + 1 + header.length + content.length);
    return { bytes: out, minPages };
  }
  return { bytes: module, minPages: 0 };
}
