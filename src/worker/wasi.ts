import { ConsoleStdout, File, OpenFile, WASI } from '@bjorn3/browser_wasi_shim';
import type { CallContext } from '@extism/extism';
import { INITIALIZE_EXPORT, WASI_HOST_MODULE } from '../wasm/wasi-namespace.js';

export { WASIProcExit } from '@bjorn3/browser_wasi_shim';

type HostFunction = (cp: CallContext, ...args: any[]) => unknown;

/** stdout and stderr: written bytes are counted and dropped, as Chainloop's engine does by default. */
const discard = new ConsoleStdout(() => {});

/**
 * One instance's WASI preview 1, in pure JavaScript (why not Node's: src/wasm/wasi-namespace.ts), set
 * up as Chainloop's engine sets up wazero's: no arguments, no environment, no preopened directories (so
 * every filesystem call fails), an empty stdin, real clocks and a CSPRNG. Each instance gets its own,
 * so nothing a guest does to its descriptors reaches the next evaluation.
 */
export class GuestWasi {
  // debug: false, or the library logs some calls to the console (its default is on).
  readonly #wasi = new WASI([], [], [new OpenFile(new File([])), discard, discard], { debug: false });

  /** Host functions under the namespace the module was rewritten to; the SDK passes its CallContext first. */
  hostFunctions(): Record<string, Record<string, HostFunction>> {
    const functions: Record<string, HostFunction> = {};
    for (const [name, fn] of Object.entries(this.#wasi.wasiImport)) functions[name] = (_cp, ...args) => fn(...args);
    return { [WASI_HOST_MODULE]: functions };
  }

  /** Gives the WASI the instance's memory and runs a reactor's `_initialize`, as the SDK's WASI did. */
  attach(instance: WebAssembly.Instance): void {
    this.#wasi.inst = instance as unknown as WASI['inst'];
    const initialize = instance.exports[INITIALIZE_EXPORT];
    if (typeof initialize === 'function') (initialize as () => void)();
  }
}
