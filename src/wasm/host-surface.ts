/**
 * Every import a policy module may have: what the worker's Extism host provides. Checked at load, so a
 * module that could never instantiate is refused with the names it is missing.
 */
export const EXTISM_ENV = 'extism:host/env';
export const EXTISM_USER = 'extism:host/user';
export const WASI_MODULE = 'wasi_snapshot_preview1';

/** The @extism/extism 2.0.0-rc13 kernel (its CallContext ENV). */
const EXTISM_KERNEL = [
  'alloc',
  'free',
  'load_u8',
  'load_u64',
  'store_u8',
  'store_u64',
  'input_offset',
  'input_length',
  'input_load_u8',
  'input_load_u64',
  'output_set',
  'error_set',
  'error_get',
  'config_get',
  'var_get',
  'var_set',
  'http_request',
  'http_status_code',
  'http_headers',
  'length',
  'length_unsafe',
  'log_warn',
  'log_info',
  'log_debug',
  'log_error',
  'log_trace',
  'get_log_level',
];

/** Chainloop registers its discover builtin under both names (TinyGo `env`, extism-js `extism:host/user`). */
export const DISCOVER_NAMESPACES = ['env', EXTISM_USER] as const;
export const DISCOVER_FUNCTION = 'chainloop_discover';

/** wasi_snapshot_preview1: what the worker's WASI (src/worker/wasi.ts) serves, every function of preview 1. */
export const WASI_FUNCTIONS: ReadonlySet<string> = new Set([
  'args_get',
  'args_sizes_get',
  'clock_res_get',
  'clock_time_get',
  'environ_get',
  'environ_sizes_get',
  'fd_advise',
  'fd_allocate',
  'fd_close',
  'fd_datasync',
  'fd_fdstat_get',
  'fd_fdstat_set_flags',
  'fd_fdstat_set_rights',
  'fd_filestat_get',
  'fd_filestat_set_size',
  'fd_filestat_set_times',
  'fd_pread',
  'fd_prestat_get',
  'fd_prestat_dir_name',
  'fd_pwrite',
  'fd_read',
  'fd_readdir',
  'fd_renumber',
  'fd_seek',
  'fd_sync',
  'fd_tell',
  'fd_write',
  'path_create_directory',
  'path_filestat_get',
  'path_filestat_set_times',
  'path_link',
  'path_open',
  'path_readlink',
  'path_remove_directory',
  'path_rename',
  'path_symlink',
  'path_unlink_file',
  'poll_oneoff',
  'proc_exit',
  'proc_raise',
  'random_get',
  'sched_yield',
  'sock_accept',
  'sock_recv',
  'sock_send',
  'sock_shutdown',
]);

/** Functions the daemon serves itself rather than the Extism SDK's kernel. */
const DAEMON_SERVED = new Set(['var_set', 'http_request', 'http_status_code', 'http_headers']);

export function isDaemonServed(module: string, name: string): boolean {
  return module === EXTISM_ENV
    ? DAEMON_SERVED.has(name)
    : (DISCOVER_NAMESPACES as readonly string[]).includes(module) && name === DISCOVER_FUNCTION;
}

export function isProvided(module: string, name: string): boolean {
  if (module === EXTISM_ENV) return EXTISM_KERNEL.includes(name);
  if (module === WASI_MODULE) return WASI_FUNCTIONS.has(name);
  if ((DISCOVER_NAMESPACES as readonly string[]).includes(module)) return name === DISCOVER_FUNCTION;
  return false;
}
