import { PolicydError } from '../errors/policyd-error.js';

/**
 * The few pieces of the WebAssembly binary format the daemon rewrites at load (memory maxima, the WASI
 * namespace): LEB128 numbers, names, and a pass that replaces whole sections and keeps every other byte.
 */

const HEADER_BYTES = 8;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

export function readU32(bytes: Uint8Array, at: number): [value: number, next: number] {
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

export function writeU32(value: number): number[] {
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

/** Skips a LEB128 number of any width (signed constants of i64 run to ten bytes). */
export function skipLeb(bytes: Uint8Array, at: number): number {
  let i = at;
  while (i < bytes.length && (bytes[i]! & 0x80) !== 0) i++;
  if (i >= bytes.length) throw new Error('truncated LEB128');
  return i + 1;
}

export function readName(bytes: Uint8Array, at: number): [name: string, next: number] {
  const [length, start] = readU32(bytes, at);
  if (start + length > bytes.length) throw new Error('truncated name');
  return [utf8.decode(bytes.subarray(start, start + length)), start + length];
}

export function writeName(name: string): number[] {
  const bytes = encoder.encode(name);
  return [...writeU32(bytes.length), ...bytes];
}

/** Skips a value type: one byte, or a reference type with a heap type (typed function references, GC). */
export function skipValueType(bytes: Uint8Array, at: number): number {
  // Past the end is an error, not a byte: a count read from a hostile module must not loop for ever.
  if (at >= bytes.length) throw new Error('truncated value type');
  const type = bytes[at]!;
  return type === 0x63 || type === 0x64 ? skipLeb(bytes, at + 1) : at + 1;
}

export enum ExternalKind {
  Function = 0,
  Table = 1,
  Memory = 2,
  Global = 3,
  Tag = 4,
}

/** Where an import's description ends: `at` is its kind byte. */
export function skipImportDescription(bytes: Uint8Array, at: number): number {
  let p = at + 1;
  const limits = () => {
    const flags = bytes[p++]!;
    p = skipLeb(bytes, p);
    if (flags & 0x01) p = skipLeb(bytes, p);
  };
  switch (bytes[at]) {
    case ExternalKind.Function:
      return skipLeb(bytes, p);
    case ExternalKind.Table:
      p = skipValueType(bytes, p);
      limits();
      return p;
    case ExternalKind.Memory:
      limits();
      return p;
    case ExternalKind.Global:
      return skipValueType(bytes, p) + 1;
    case ExternalKind.Tag:
      return skipLeb(bytes, p + 1);
    default:
      throw new Error(`unknown import kind ${bytes[at]}`);
  }
}

/** Each section of a module: its id, its content, and where the section (id byte included) starts and ends. */
export function* sections(module: Uint8Array, label: string): Generator<{ id: number; content: Uint8Array; start: number; end: number }> {
  let at = HEADER_BYTES;
  while (at < module.length) {
    const id = module[at]!;
    const [size, contentStart] = readU32(module, at + 1);
    const end = contentStart + size;
    if (end > module.length) throw new PolicydError('INVALID_MODULE', `${label} does not compile: section ${id} runs past the end`);
    yield { id, content: module.subarray(contentStart, end), start: at, end };
    at = end;
  }
}

/**
 * Rebuilds a module with some sections replaced: `replace` gets each section's id and content and
 * returns new content, or undefined to keep the section as it is. A module nothing replaces is
 * returned as the same array.
 */
export function rewriteSections(
  module: Uint8Array,
  label: string,
  replace: (id: number, content: Uint8Array) => Uint8Array | number[] | undefined,
): Uint8Array {
  const parts: (Uint8Array | number[])[] = [module.subarray(0, HEADER_BYTES)];
  let changed = false;
  for (const { id, content, start, end } of sections(module, label)) {
    let replaced: Uint8Array | number[] | undefined;
    try {
      replaced = replace(id, content);
    } catch (err) {
      if (err instanceof PolicydError) throw err;
      throw new PolicydError('INVALID_MODULE', `${label} does not compile: malformed section ${id} (${(err as Error).message})`);
    }
    if (replaced === undefined) {
      parts.push(module.subarray(start, end));
    } else {
      changed = true;
      parts.push([id, ...writeU32(replaced.length)], replaced);
    }
  }
  return changed ? Buffer.concat(parts.map((part) => (part instanceof Uint8Array ? part : Uint8Array.from(part)))) : module;
}

/** Where each known section goes, by id: the binary format fixes their order (the tag section, 13, sits after memory). */
const SECTION_ORDER = [1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11];

/**
 * The module with an empty vector section (count 0) inserted, in its place, for each id in `ids` it
 * lacks; a module that has them all is returned as the same array.
 */
export function withSections(module: Uint8Array, label: string, ids: number[]): Uint8Array {
  const present = new Set([...sections(module, label)].map((s) => s.id));
  const missing = ids.filter((id) => !present.has(id));
  if (missing.length === 0) return module;
  const rank = (id: number) => SECTION_ORDER.indexOf(id);
  const parts: Uint8Array[] = [module.subarray(0, HEADER_BYTES)];
  const insertBefore = (limit: number) => {
    while (missing.length > 0 && rank(missing[0]!) < limit) parts.push(Uint8Array.from([missing.shift()!, 1, 0]));
  };
  missing.sort((a, b) => rank(a) - rank(b));
  for (const { id, start, end } of sections(module, label)) {
    if (id !== 0) insertBefore(rank(id));
    parts.push(module.subarray(start, end));
  }
  insertBefore(Number.POSITIVE_INFINITY);
  return Buffer.concat(parts);
}
