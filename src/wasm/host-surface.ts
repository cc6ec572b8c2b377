import { WASI } from 'node:wasi';

/**
 * Every import a policy module may have: what the worker's Extism host provides. Checked at load, so a
 * module that could never instantiate is refused with the names it is missing.
 */
export const EXTISM_ENV = 'extism:host/env';
export const EXTISM_USER = 'extism:host/user';
export const WASI_MODULE = 'wasi_snapshot_preview1';

/** The @extism/extism 2.0.0-rc13 kernel (its CallContext ENV). */
const EXTISM_KERNEL = [
  'alloc', 'free', 'load_u8', 'load_u64', 'store_u8', 'store_u64', 'input_offset', 'input_length',
  'input_load_u8', 'input_load_u64', 'output_set', 'error_set', 'error_get', 'config_get', 'var_get',
  'var_set', 'http_request', 'http_status_code', 'http_headers', 'length', 'length_unsafe', 'log_warn',
  'log_info', 'log_debug', 'log_error', 'log_trace', 'get_log_level',
];

/** Chainloop registers its discover builtin under both names (TinyGo `env`, extism-js `extism:host/user`). */
export const DISCOVER_NAMESPACES = ['env', EXTISM_USER] as const;
export const DISCOVER_FUNCTION = 'chainloop_discover';

let wasiFunctions: Set<string> | undefined;

function wasiSurface(): Set<string> {
  wasiFunctions ??= new Set(Object.keys(new WASI({ version: 'preview1' }).wasiImport));
  return wasiFunctions;
}

export function isProvided(module: string, name: string): boolean {
  if (module === EXTISM_ENV) return EXTISM_KERNEL.includes(name);
  if (module === WASI_MODULE) return wasiSurface().has(name);
  if ((DISCOVER_NAMESPACES as readonly string[]).includes(module)) return name === DISCOVER_FUNCTION;
  return false;
}
