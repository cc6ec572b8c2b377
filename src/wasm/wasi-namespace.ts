import { readName, readU32, rewriteSections, writeName, writeU32 } from './binary.js';
import { WASI_MODULE } from './host-surface.js';

/**
 * Moves a module's WASI imports to a namespace of the daemon's, so every instance gets the worker's
 * pure-JavaScript WASI (src/worker/wasi.ts) instead of Node's.
 *
 * Why: with `useWasi`, @extism/extism imports `node:wasi`'s native functions into every instance, and
 * V8 compiles a fast-API call wrapper per native import per instance that it never frees (~3.4 KB per
 * instance on Node 20, less but still growing on Node 24): a fresh instance per evaluation then leaks
 * without bound. JavaScript imports share V8's generic wrappers, which are cached per signature.
 *
 * The SDK replaces anything it sees under `wasi_snapshot_preview1` with Node's WASI, hence the rename.
 * `_initialize` and `_start` are renamed too: without its own WASI the SDK would run them while
 * instantiating, before the worker's WASI knows the instance's memory. The worker runs the reactor's
 * `_initialize` itself once the instance exists, and never a command's `_start`, exactly as the SDK's
 * WASI path did.
 */
export const WASI_HOST_MODULE = 'policyd:wasi_snapshot_preview1';
export const INITIALIZE_EXPORT = 'policyd:_initialize';
const RENAMED_EXPORTS: Record<string, string> = { _initialize: INITIALIZE_EXPORT, _start: 'policyd:_start' };

const IMPORT_SECTION = 2;
const EXPORT_SECTION = 7;
const enum ImportKind { Function = 0, Table = 1, Memory = 2, Global = 3, Tag = 4 }

/** Where an import description ends: `at` is its kind byte. */
function skipImportDescription(section: Uint8Array, at: number): number {
  const kind = section[at]!;
  let p = at + 1;
  const limits = () => {
    const flags = section[p++]!;
    [, p] = readU32(section, p);
    if (flags & 0x01) [, p] = readU32(section, p);
  };
  switch (kind) {
    case ImportKind.Function: return readU32(section, p)[1];
    case ImportKind.Table: p++; limits(); return p;
    case ImportKind.Memory: limits(); return p;
    case ImportKind.Global: return p + 2;
    case ImportKind.Tag: return readU32(section, p + 1)[1];
    default: throw new Error(`unknown import kind ${kind}`);
  }
}

function renameImports(section: Uint8Array): number[] | undefined {
  let [count, p] = readU32(section, 0);
  const out = writeU32(count);
  let renamed = false;
  while (count-- > 0) {
    const [module, afterModule] = readName(section, p);
    const [, afterName] = readName(section, afterModule);
    const end = skipImportDescription(section, afterName);
    if (module === WASI_MODULE) {
      renamed = true;
      out.push(...writeName(WASI_HOST_MODULE), ...section.subarray(afterModule, end));
    } else {
      out.push(...section.subarray(p, end));
    }
    p = end;
  }
  if (p !== section.length) throw new Error('bytes after the last import');
  return renamed ? out : undefined;
}

function renameExports(section: Uint8Array): number[] {
  let [count, p] = readU32(section, 0);
  const out = writeU32(count);
  while (count-- > 0) {
    const [name, afterName] = readName(section, p);
    const end = readU32(section, afterName + 1)[1];
    out.push(...writeName(RENAMED_EXPORTS[name] ?? name), ...section.subarray(afterName, end));
    p = end;
  }
  if (p !== section.length) throw new Error('bytes after the last export');
  return out;
}

/** The module with its WASI imports and start functions renamed; unchanged when it imports no WASI. */
export function privateWasi(module: Uint8Array, label: string): Uint8Array {
  let usesWasi = false;
  return rewriteSections(module, label, (id, section) => {
    if (id === IMPORT_SECTION) {
      const renamed = renameImports(section);
      usesWasi = renamed !== undefined;
      return renamed;
    }
    // The export section always follows the import section.
    return id === EXPORT_SECTION && usesWasi ? renameExports(section) : undefined;
  });
}
