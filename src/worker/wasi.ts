import { ConsoleStdout, File, OpenFile, WASI } from '@bjorn3/browser_wasi_shim';

export { WASIProcExit } from '@bjorn3/browser_wasi_shim';

/** stdout and stderr: written bytes are counted and dropped, as Chainloop's engine does by default. */
const discard = new ConsoleStdout(() => {});

/**
 * One policy instance's WASI preview 1, in pure JavaScript, set up as Chainloop's engine sets up
 * wazero's: no arguments, no environment, no preopened directories (so every filesystem call fails),
 * an empty stdin, real clocks and a CSPRNG. Each instance gets its own.
 *
 * Why not Node's `node:wasi` (what the Extism SDK's `useWasi` gives): V8 compiles a fast-API call
 * wrapper for each of its native functions in every instance that imports them and never frees it —
 * ~3.4 KB per instance on Node 20 — so a new instance per
 * evaluation leaked without bound. JavaScript imports share V8's generic wrappers.
 */
export class GuestWasi {
  #wasi = GuestWasi.#state();
  #instance?: WebAssembly.Instance;

  // debug: false, or the library logs some calls to the console (its default is on).
  static #state(): WASI {
    return new WASI([], [], [new OpenFile(new File([])), discard, discard], { debug: false });
  }

  /**
   * The `wasi_snapshot_preview1` import object. Each function calls the current WASI state's, so an
   * instance that is reset (src/worker/instances.ts) gets a new state without being made again.
   */
  // biome-ignore lint/suspicious/noExplicitAny: WASI functions take i32/i64 arguments of many shapes
  readonly imports: Record<string, (...args: any[]) => unknown> = Object.fromEntries(
    // biome-ignore lint/suspicious/noExplicitAny: as above
    Object.keys(this.#wasi.wasiImport).map((name) => [name, (...args: any[]) => this.#wasi.wasiImport[name]!(...args)]),
  );

  /** Gives the WASI the instance's memory, before any of its code runs. */
  attach(instance: WebAssembly.Instance): void {
    this.#instance = instance;
    this.#wasi.inst = instance as unknown as WASI['inst'];
  }

  /** Descriptors, as a new instance has them. */
  renew(): void {
    this.#wasi = GuestWasi.#state();
    this.#wasi.inst = this.#instance as unknown as WASI['inst'];
  }
}
