import { PolicydError } from '../errors/policyd-error.js';
import { readU32, rewriteSections, writeU32 } from './binary.js';

/**
 * Caps a module's linear memory by rewriting the maximum in its memory section before it is
 * compiled. @extism/extism's `memory.maxPages` only bounds the SDK's own blocks, not the guest's
 * memory, so without this a guest could grow to 4 GiB whatever the host says.
 */

export const PAGE_BYTES = 64 * 1024;
const MEMORY_SECTION = 5;

/** Returns the module with every memory's maximum set to at most `capPages`. */
export function capMemory(module: Uint8Array, capPages: number, label: string): Uint8Array {
  return rewriteSections(module, label, (id, section) => {
    if (id !== MEMORY_SECTION) return undefined;
    let [count, p] = readU32(section, 0);
    const content: number[] = [...writeU32(count)];
    while (count-- > 0) {
      const flags = section[p++]!;
      if (flags & 0x04) throw new PolicydError('INVALID_MODULE', `${label} declares a 64-bit memory, which is not supported`);
      const [min, afterMin] = readU32(section, p);
      p = afterMin;
      let max = Number.POSITIVE_INFINITY;
      if (flags & 0x01) [max, p] = readU32(section, p);
      if (min > capPages) {
        throw new PolicydError(
          'POLICY_MEMORY',
          `${label} declares ${min} pages (${(min * PAGE_BYTES) / 2 ** 20} MiB) of initial memory, more than the ${(capPages * PAGE_BYTES) / 2 ** 20} MiB memory limit`,
        );
      }
      content.push(flags | 0x01, ...writeU32(min), ...writeU32(Math.min(max, capPages)));
    }
    if (p !== section.length) throw new PolicydError('INVALID_MODULE', `${label} does not compile: malformed memory section`);
    return content;
  });
}
