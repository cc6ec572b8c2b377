import { errorMessage } from '../errors/policyd-error.js';
import { readName, readU32, rewriteSections, sections, skipLeb, skipValueType, withSections, writeName, writeU32 } from './binary.js';

/**
 * Rewrites a policy module so that one instance can be put back, after an evaluation, into exactly the
 * state it had when it was new (src/worker/instances.ts) — which costs a memory copy, where a new
 * instance costs V8's whole instantiation and, later, collecting it.
 *
 * A new instance's state is its linear memory (contents and size), its globals and its tables. Memory
 * contents and mutable globals can be written back from JavaScript once the globals are exported, which
 * this rewrite does. Memory *size* cannot: a WebAssembly memory never shrinks, and TinyGo and Go grow
 * theirs in every evaluation. So the rewrite makes the size the guest sees a global of its own:
 * `memory.size` reads that global, and `memory.grow` becomes a call to an added function that grows the
 * global — and the real memory only when the guest needs pages it never had — within the same maximum,
 * answering -1 where a real grow would. Writing the global back restores the size a new instance has,
 * and the pages above it are zeroed, as pages a new instance grows into are.
 *
 * What is left different from a new instance: an access between the size the guest sees and the real
 * size reads or writes zeroed memory where a new instance would trap. Only a guest that reads past its
 * own memory does that; it cannot see anything another evaluation left.
 *
 * Modules this cannot restore exactly keep a new instance per evaluation: those that change a table
 * (`table.set`/`grow`/`fill`/`copy`/`init`, `elem.drop`) or drop a data segment (`data.drop`: a passive
 * segment cannot be un-dropped), those with a mutable global JavaScript cannot read (v128, references),
 * more than one memory, or an instruction this decoder does not know (GC, atomics: it never guesses).
 */

/** How to put an instance of a rewritten module back into its new state. */
export interface ResetPlan {
  /** Export name of the linear memory, if the module has one. */
  memory?: string;
  /** Export name of the global holding the memory size the guest sees, in pages (with a memory). */
  size?: string;
  /** Export names of every mutable global, `size` included. */
  globals: string[];
}

export type Resettable = { module: Uint8Array; plan: ResetPlan } | { module: Uint8Array; plan?: undefined; why: string };

/** Prefix of the exports the rewrite adds; a module that already uses it is not rewritten. */
export const RESET_EXPORT_PREFIX = 'policyd.reset.';

enum Section {
  Type = 1,
  Import = 2,
  Function = 3,
  Memory = 5,
  Global = 6,
  Export = 7,
  Code = 10,
}

const I32 = 0x7f;
const I64 = 0x7e;
const F32 = 0x7d;
const F64 = 0x7c;

enum Op {
  Block = 0x02,
  Loop = 0x03,
  If = 0x04,
  Try = 0x06,
  Catch = 0x07,
  Throw = 0x08,
  Rethrow = 0x09,
  Br = 0x0c,
  BrIf = 0x0d,
  BrTable = 0x0e,
  Return = 0x0f,
  Call = 0x10,
  CallIndirect = 0x11,
  ReturnCall = 0x12,
  ReturnCallIndirect = 0x13,
  CallRef = 0x14,
  ReturnCallRef = 0x15,
  Delegate = 0x18,
  SelectTyped = 0x1c,
  TryTable = 0x1f,
  LocalGet = 0x20,
  LocalSet = 0x21,
  LocalTee = 0x22,
  GlobalGet = 0x23,
  GlobalSet = 0x24,
  TableGet = 0x25,
  TableSet = 0x26,
  FirstMemoryAccess = 0x28,
  LastMemoryAccess = 0x3e,
  MemorySize = 0x3f,
  MemoryGrow = 0x40,
  I32Const = 0x41,
  I64Const = 0x42,
  F32Const = 0x43,
  F64Const = 0x44,
  FirstNumeric = 0x45,
  LastNumeric = 0xc4,
  RefNull = 0xd0,
  RefFunc = 0xd2,
  BrOnNull = 0xd5,
  BrOnNonNull = 0xd6,
  Misc = 0xfc,
  Simd = 0xfd,
  End = 0x0b,
  I32Add = 0x6a,
  I32Sub = 0x6b,
  I32Eq = 0x46,
  I32GtU = 0x4b,
}

/** Instructions with no immediates outside the numeric range. */
const BARE = new Set([0x00, 0x01, 0x05, 0x0a, 0x0b, 0x0f, 0x19, 0x1a, 0x1b, 0xd1, 0xd3, 0xd4]);
/** Instructions with one LEB128 immediate (an index or a depth). */
const ONE_INDEX = new Set<number>([
  Op.Catch,
  Op.Throw,
  Op.Rethrow,
  Op.Br,
  Op.BrIf,
  Op.Call,
  Op.ReturnCall,
  Op.CallRef,
  Op.ReturnCallRef,
  Op.Delegate,
  Op.LocalGet,
  Op.LocalSet,
  Op.LocalTee,
  Op.GlobalGet,
  Op.GlobalSet,
  Op.TableGet,
  Op.RefNull,
  Op.RefFunc,
  Op.BrOnNull,
  Op.BrOnNonNull,
]);

class Unrestorable extends Error {}

/** Skips a block type: empty, a value type, or a type index (s33). */
function skipBlockType(code: Uint8Array, at: number): number {
  return code[at] === 0x63 || code[at] === 0x64 ? skipLeb(code, at + 1) : skipLeb(code, at);
}

/** Skips a memory access's alignment (with a memory index when bit 6 says so) and offset. */
function skipMemarg(code: Uint8Array, at: number): number {
  const [align, next] = readU32(code, at);
  const offset = align & 0x40 ? skipLeb(code, next) : next;
  return skipLeb(code, offset);
}

/** Where the immediates of the 0xFC instruction `sub` end, if it leaves tables and data segments alone. */
function skipMisc(code: Uint8Array, sub: number, at: number): number {
  if (sub <= 7) return at; // saturating truncations
  if (sub === 8) return skipLeb(code, skipLeb(code, at)); // memory.init data memory
  if (sub === 10) return skipLeb(code, skipLeb(code, at)); // memory.copy
  if (sub === 11 || sub === 16) return skipLeb(code, at); // memory.fill, table.size
  if (sub === 9) throw new Unrestorable('it drops a data segment (data.drop)');
  if (sub >= 12 && sub <= 17) throw new Unrestorable('it changes a table (table.init/grow/fill/copy, elem.drop)');
  throw new Unrestorable(`it uses instruction 0xfc ${sub}, unknown here`);
}

/** Where the immediates of the SIMD instruction `sub` end. */
function skipSimd(code: Uint8Array, sub: number, at: number): number {
  if (sub <= 0x0b || sub === 0x5c || sub === 0x5d) return skipMemarg(code, at); // loads, store, load_zero
  if (sub === 0x0c || sub === 0x0d) return at + 16; // v128.const, i8x16.shuffle
  if (sub >= 0x15 && sub <= 0x22) return at + 1; // extract/replace lane
  if (sub >= 0x54 && sub <= 0x5b) return skipMemarg(code, at) + 1; // load/store lane
  if (sub <= 0x113) return at; // arithmetic, relaxed SIMD
  throw new Unrestorable(`it uses SIMD instruction ${sub}, unknown here`);
}

/** Output built from pieces: copied stretches of the module and the few bytes written in between. */
class Chunks {
  readonly parts: Uint8Array[] = [];
  length = 0;

  add(part: Uint8Array | number[]): void {
    const bytes = part instanceof Uint8Array ? part : Uint8Array.from(part);
    this.parts.push(bytes);
    this.length += bytes.length;
  }

  append(other: Chunks): void {
    for (const part of other.parts) this.add(part);
  }

  bytes(): Uint8Array {
    return Buffer.concat(this.parts, this.length);
  }
}

/**
 * Copies one function body's instructions (from `start`) to `out`, replacing `memory.size` and
 * `memory.grow` (`0x3F 0x00`, `0x40 0x00`) by a read of the guest's size and a call to the added grow
 * function. Every instruction is decoded, so no immediate is mistaken for either.
 */
function rewriteExpression(code: Uint8Array, start: number, out: Chunks, sizeGlobal: number[], growCall: number[]): void {
  let copied = start;
  let at = start;
  while (at < code.length) {
    const op = code[at]!;
    let next = at + 1;
    if (op === Op.MemorySize || op === Op.MemoryGrow) {
      if (code[next] !== 0) throw new Unrestorable('it addresses a second memory');
      out.add(code.subarray(copied, at));
      out.add(op === Op.MemorySize ? [Op.GlobalGet, ...sizeGlobal] : growCall);
      at = copied = next + 1;
      continue;
    }
    if (BARE.has(op) || (op >= Op.FirstNumeric && op <= Op.LastNumeric)) {
      // no immediates
    } else if (ONE_INDEX.has(op)) {
      next = skipLeb(code, next);
    } else if (op === Op.Block || op === Op.Loop || op === Op.If || op === Op.Try) {
      next = skipBlockType(code, next);
    } else if (op === Op.BrTable) {
      let [count, p] = readU32(code, next);
      for (; count >= 0; count--) p = skipLeb(code, p); // the targets and the default
      next = p;
    } else if (op === Op.CallIndirect || op === Op.ReturnCallIndirect) {
      next = skipLeb(code, skipLeb(code, next));
    } else if (op === Op.SelectTyped) {
      let [count, p] = readU32(code, next);
      while (count-- > 0) p = skipValueType(code, p);
      next = p;
    } else if (op === Op.TryTable) {
      let [count, p] = readU32(code, skipBlockType(code, next));
      while (count-- > 0) {
        const kind = code[p++]!;
        p = skipLeb(code, kind < 2 ? skipLeb(code, p) : p); // catch/catch_ref name a tag, then a label
      }
      next = p;
    } else if (op >= Op.FirstMemoryAccess && op <= Op.LastMemoryAccess) {
      next = skipMemarg(code, next);
    } else if (op === Op.I32Const || op === Op.I64Const) {
      next = skipLeb(code, next);
    } else if (op === Op.F32Const) {
      next += 4;
    } else if (op === Op.F64Const) {
      next += 8;
    } else if (op === Op.Misc || op === Op.Simd) {
      const [sub, p] = readU32(code, next);
      next = op === Op.Misc ? skipMisc(code, sub, p) : skipSimd(code, sub, p);
    } else if (op === Op.TableSet) {
      throw new Unrestorable('it changes a table (table.set)');
    } else {
      throw new Unrestorable(`it uses instruction 0x${op.toString(16)}, unknown here`);
    }
    at = next;
  }
  if (at !== code.length) throw new Error('a function body runs past its end');
  out.add(code.subarray(copied));
}

function writeI32Const(value: number): number[] {
  // Signed LEB128 of a non-negative value below 2^31.
  const out: number[] = [];
  let v = value;
  for (;;) {
    const b = v & 0x7f;
    v = Math.floor(v / 128);
    if (v === 0 && (b & 0x40) === 0) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

/**
 * The added grow function, `(param $n i32) (result i32) (local $old i32) (local $new i32)`: the size
 * the guest sees is $vsize; growing past `maxPages` fails as memory.grow fails; the real memory grows
 * only to pages it never had.
 */
function growBody(sizeGlobal: number[], maxPages: number): number[] {
  const [n, old, neu] = [0, 1, 2];
  const failIf = [Op.If, 0x40, Op.I32Const, 0x7f, Op.Return, Op.End];
  // biome-ignore format: one instruction per line
  const body = [
    0x01, 0x02, I32, // locals: two i32
    Op.GlobalGet, ...sizeGlobal, Op.LocalSet, old,
    // n > max - old: past the maximum (or overflowing)
    Op.LocalGet, n, Op.I32Const, ...writeI32Const(maxPages), Op.LocalGet, old, Op.I32Sub, Op.I32GtU, ...failIf,
    Op.LocalGet, old, Op.LocalGet, n, Op.I32Add, Op.LocalSet, neu,
    // pages the real memory never had: grow it, failing as the guest's grow would
    Op.LocalGet, neu, Op.MemorySize, 0x00, Op.I32GtU,
    Op.If, 0x40,
    Op.LocalGet, neu, Op.MemorySize, 0x00, Op.I32Sub, Op.MemoryGrow, 0x00, Op.I32Const, 0x7f, Op.I32Eq, ...failIf,
    Op.End,
    Op.LocalGet, neu, Op.GlobalSet, ...sizeGlobal,
    Op.LocalGet, old,
    Op.End,
  ];
  return [...writeU32(body.length), ...body];
}

/** Walks a vector section: `read` gets where an entry starts and returns where it ends. */
function entries(section: Uint8Array, read: (at: number, index: number) => number): number {
  const [count, first] = readU32(section, 0);
  // Every entry takes at least a byte: a larger count is a hostile module's, not one to walk.
  if (count > section.length - first) throw new Error('malformed vector section');
  let p = first;
  for (let i = 0; i < count; i++) p = read(p, i);
  if (p !== section.length) throw new Error('malformed vector section');
  return count;
}

/** A vector section with `added` entries appended. */
function appended(section: Uint8Array, added: number[][]): Uint8Array {
  const [count, first] = readU32(section, 0);
  const out = new Chunks();
  out.add(writeU32(count + added.length));
  out.add(section.subarray(first));
  for (const entry of added) out.add(entry);
  return out.bytes();
}

/** Skips a constant expression (a global's initialiser): instructions up to and including `end`. */
function skipConstExpression(bytes: Uint8Array, at: number): number {
  let p = at;
  for (;;) {
    const op = bytes[p++]!;
    if (op === Op.End) return p;
    if (op === Op.F32Const) p += 4;
    else if (op === Op.F64Const) p += 8;
    else if (op === Op.Simd)
      p = skipLeb(bytes, p) + 16; // v128.const
    else if (![0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e].includes(op)) p = skipLeb(bytes, p); // extended-const arithmetic has none
  }
}

/** The module rewritten for reset, or the module as it was and why it keeps a new instance per evaluation. */
export function makeResettable(module: Uint8Array, label: string): Resettable {
  try {
    return rewrite(module, label);
  } catch (err) {
    // A module this cannot decode is left for the compiler to judge.
    return { module, why: err instanceof Unrestorable ? err.message : `it could not be decoded here (${errorMessage(err)})` };
  }
}

function rewrite(given: Uint8Array, label: string): Resettable {
  // The sections the rewrite appends to, empty where the module has none.
  const module = withSections(given, label, [Section.Type, Section.Function, Section.Global, Section.Export, Section.Code]);
  const found = new Map<number, Uint8Array>();
  let importedFunctions = 0;
  let memory: { initialPages: number; maxPages: number } | undefined;
  const mutableGlobals: number[] = [];
  let memoryExport: string | undefined;
  const exportNames: string[] = [];
  for (const { id, content } of sections(module, label)) {
    found.set(id, content);
    if (id === Section.Type) {
      entries(content, (at) => {
        if (content[at] !== 0x60) throw new Unrestorable('its types use the GC proposal');
        let [params, p] = readU32(content, at + 1);
        while (params-- > 0) p = skipValueType(content, p);
        let [results, q] = readU32(content, p);
        while (results-- > 0) q = skipValueType(content, q);
        return q;
      });
    } else if (id === Section.Import) {
      entries(content, (at) => {
        const [, afterModule] = readName(content, at);
        const [, afterName] = readName(content, afterModule);
        // compilePolicyModule refuses any other import; here it would be state this cannot reset.
        if (content[afterName] !== 0) throw new Unrestorable('it imports something other than functions');
        importedFunctions++;
        return skipLeb(content, afterName + 1);
      });
    } else if (id === Section.Memory) {
      const [count, p] = readU32(content, 0);
      if (count > 1) throw new Unrestorable('it has more than one memory');
      if (count === 1) {
        const flags = content[p]!;
        if (flags & 0x06) throw new Unrestorable('its memory is shared or 64-bit');
        const [initialPages, afterInitial] = readU32(content, p + 1);
        // capMemory has written a maximum into every memory; without one, 4 GiB.
        memory = { initialPages, maxPages: flags & 0x01 ? readU32(content, afterInitial)[0] : 65536 };
      }
    } else if (id === Section.Global) {
      entries(content, (at, index) => {
        const type = content[at]!;
        const afterType = skipValueType(content, at);
        if (content[afterType] === 1) {
          if (![I32, I64, F32, F64].includes(type))
            throw new Unrestorable('it has a mutable global JavaScript cannot write back (v128 or reference)');
          mutableGlobals.push(index);
        }
        return skipConstExpression(content, afterType + 1);
      });
    } else if (id === Section.Export) {
      entries(content, (at) => {
        const [name, afterName] = readName(content, at);
        exportNames.push(name);
        if (content[afterName] === 2) memoryExport ??= name;
        return skipLeb(content, afterName + 1);
      });
    }
  }
  if (exportNames.some((name) => name.startsWith(RESET_EXPORT_PREFIX))) {
    throw new Unrestorable(`it already exports names starting with ${RESET_EXPORT_PREFIX}`);
  }
  const globalCount = readU32(found.get(Section.Global)!, 0)[0];
  const exports: number[][] = [];
  const plan: ResetPlan = { globals: [] };
  const exportAs = (name: string, kind: number, index: number) => {
    exports.push([...writeName(RESET_EXPORT_PREFIX + name), kind, ...writeU32(index)]);
    return RESET_EXPORT_PREFIX + name;
  };
  for (const g of mutableGlobals) plan.globals.push(exportAs(`global.${g}`, 3, g));
  const replacements = new Map<number, Uint8Array>();
  if (memory) {
    const sizeGlobal = writeU32(globalCount);
    plan.size = exportAs('size', 3, globalCount);
    plan.globals.push(plan.size);
    plan.memory = memoryExport ?? exportAs('memory', 2, 0);
    const types = readU32(found.get(Section.Type)!, 0)[0];
    const definedFunctions = readU32(found.get(Section.Function)!, 0)[0];
    const growCall = [Op.Call, ...writeU32(importedFunctions + definedFunctions)];
    replacements.set(Section.Type, appended(found.get(Section.Type)!, [[0x60, 0x01, I32, 0x01, I32]]));
    replacements.set(Section.Function, appended(found.get(Section.Function)!, [writeU32(types)]));
    replacements.set(
      Section.Global,
      appended(found.get(Section.Global)!, [[I32, 0x01, Op.I32Const, ...writeI32Const(memory.initialPages), Op.End]]),
    );
    replacements.set(Section.Code, rewriteCode(found.get(Section.Code)!, sizeGlobal, growCall, growBody(sizeGlobal, memory.maxPages)));
  }
  replacements.set(Section.Export, appended(found.get(Section.Export)!, exports));
  return { module: rewriteSections(module, label, (id) => replacements.get(id)), plan };
}

/** The code section with every body rewritten and the grow function's body appended. */
function rewriteCode(section: Uint8Array, sizeGlobal: number[], growCall: number[], grow: number[]): Uint8Array {
  const out = new Chunks();
  const count = entries(section, (at) => {
    const [size, bodyStart] = readU32(section, at);
    const body = section.subarray(bodyStart, bodyStart + size);
    let [localGroups, p] = readU32(body, 0);
    while (localGroups-- > 0) p = skipValueType(body, skipLeb(body, p));
    const rewritten = new Chunks();
    rewritten.add(body.subarray(0, p));
    rewriteExpression(body, p, rewritten, sizeGlobal, growCall);
    out.add(writeU32(rewritten.length));
    out.append(rewritten);
    return bodyStart + size;
  });
  out.add(grow);
  const whole = new Chunks();
  whole.add(writeU32(count + 1));
  whole.append(out);
  return whole.bytes();
}
