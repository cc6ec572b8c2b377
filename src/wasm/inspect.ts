import { PolicydError, errorMessage } from '../errors/policyd-error.js';
import { DISCOVER_FUNCTION, EXTISM_ENV, WASI_MODULE, isDaemonServed, isProvided } from './host-surface.js';
import { makeResettable, type ResetPlan } from './resettable.js';
import { capMemory } from './memory-limit.js';
import { hostProxy, type HostProxy } from './host-proxy.js';

const MAGIC = [0x00, 0x61, 0x73, 0x6d];

/** Chainloop's detection: a script is WebAssembly when it starts with `\0asm`; anything else is Rego. */
export function isWasm(bytes: Uint8Array): boolean {
  return bytes.byteLength >= 4 && MAGIC.every((b, i) => bytes[i] === b);
}

/**
 * Chainloop accepts WebAssembly shipped as StdEncoding base64 text (the only way through an embedded
 * document): decode when the result is WebAssembly, otherwise keep the bytes as they were.
 */
export function decodeIfBase64Wasm(bytes: Uint8Array): Uint8Array {
  if (isWasm(bytes)) return bytes;
  const text = Buffer.from(bytes)
    .toString('latin1')
    .replace(/[\r\n]/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return bytes;
  const decoded = Buffer.from(text, 'base64');
  return isWasm(decoded) ? new Uint8Array(decoded.buffer, decoded.byteOffset, decoded.byteLength) : bytes;
}

export interface ModuleFacts {
  module: WebAssembly.Module;
  /** The linear-memory maximum written into the module. */
  memoryLimitPages: number;
  usesWasi: boolean;
  /**
   * How a used instance is put back into its new state (src/wasm/resettable.ts); absent when the module
   * cannot be, and every evaluation gets a new instance (`resetRefused` says why).
   */
  reset?: ResetPlan;
  resetRefused?: string;
  /** What the Extism SDK instantiates in the policy's place (src/wasm/host-proxy.ts). */
  proxy: { module: WebAssembly.Module; proxied: HostProxy['proxied'] };
  usesHttp: boolean;
  /** Imports chainloop_discover (from `env` or `extism:host/user`). */
  usesDiscover: boolean;
}

/**
 * Compiles a policy module once and checks it can run here: WebAssembly core module, an `Execute`
 * function export, and only imports the host provides.
 */
export async function compilePolicyModule(bytes: Uint8Array, label: string, memoryLimitPages: number): Promise<ModuleFacts> {
  if (!isWasm(bytes)) {
    throw new PolicydError('INVALID_MODULE', `${label} is not a WebAssembly module (it does not start with \\0asm)`);
  }
  if (bytes[4] !== 0x01 || bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) {
    throw new PolicydError(
      'INVALID_MODULE',
      `${label} is not a WebAssembly core module (version ${Array.from(bytes.subarray(4, 8)).join('.')}); components are not supported, build a core module (e.g. TinyGo -target=wasi, AssemblyScript, extism-js)`,
    );
  }
  let module: WebAssembly.Module;
  let proxy: ModuleFacts['proxy'];
  let reset: Pick<ModuleFacts, 'reset' | 'resetRefused'>;
  try {
    const capped = capMemory(bytes, memoryLimitPages, label);
    [module, reset] = await compileResettable(capped, label);
    const made = hostProxy(capped, label, isDaemonServed);
    proxy = { module: await WebAssembly.compile(made.module), proxied: made.proxied };
  } catch (err) {
    if (err instanceof PolicydError) throw err;
    throw new PolicydError('INVALID_MODULE', `${label} does not compile: ${errorMessage(err)}`);
  }
  const exports = WebAssembly.Module.exports(module);
  if (!exports.some((e) => e.name === 'Execute' && e.kind === 'function')) {
    throw new PolicydError('MISSING_EXECUTE', `wasm module validation failed: missing required 'Execute' function export (${label})`);
  }
  const imports = WebAssembly.Module.imports(module);
  const missing = imports
    .filter((i) => i.kind !== 'function' || !isProvided(i.module, i.name))
    .map((i) => `"${i.module}" "${i.name}" (${i.kind})`);
  if (missing.length > 0) {
    throw new PolicydError(
      'UNSATISFIED_IMPORT',
      `${label} imports what this host does not provide: ${missing.join(', ')}. Policies may import the Extism kernel ("${EXTISM_ENV}"), WASI preview 1 and chainloop_discover`,
    );
  }
  const usesWasi = imports.some((i) => i.module === WASI_MODULE);
  if (usesWasi && !exports.some((e) => e.name === 'memory' && e.kind === 'memory')) {
    throw new PolicydError('INVALID_MODULE', `${label} imports WASI but exports no memory named "memory"`);
  }
  return {
    module,
    memoryLimitPages,
    ...reset,
    usesWasi,
    proxy,
    usesHttp: imports.some((i) => i.module === EXTISM_ENV && i.name === 'http_request'),
    usesDiscover: imports.some((i) => i.name === DISCOVER_FUNCTION && i.module !== EXTISM_ENV),
  };
}

/**
 * Compiles the module rewritten for reset, or as it is when it cannot be reset. Should the rewritten
 * module not compile (a decoding fault here), the module as it was is compiled instead, and the
 * compiler judges it as it would have without the rewrite.
 */
async function compileResettable(
  capped: Uint8Array,
  label: string,
): Promise<[WebAssembly.Module, Pick<ModuleFacts, 'reset' | 'resetRefused'>]> {
  const made = makeResettable(capped, label);
  if (made.plan) {
    try {
      return [await WebAssembly.compile(made.module), { reset: made.plan }];
    } catch (err) {
      return [await WebAssembly.compile(capped), { resetRefused: `the module rewritten for reset did not compile (${errorMessage(err)})` }];
    }
  }
  return [await WebAssembly.compile(capped), { resetRefused: made.why }];
}
