import createPlugin, { type CallContext, type Plugin } from '@extism/extism';
import { DAEMON_HOST_MODULE, PROXY_EXECUTE, PROXY_EXECUTE_MODULE } from '../wasm/host-proxy.js';
import { DISCOVER_FUNCTION, WASI_MODULE } from '../wasm/host-surface.js';
import { PAGE_BYTES } from '../wasm/memory-limit.js';
import { discoverFunction } from './discover.js';
import type { GuestLogs } from './guest-logs.js';
import { httpFunctions } from './http-client.js';
import type { ReadyTask } from './protocol.js';
import type { ResetPlan } from '../wasm/resettable.js';
import { GuestWasi } from './wasi.js';

/**
 * Policy instances for this worker's evaluations.
 *
 * Every evaluation gets a policy instance in exactly the state a new one has, so no guest memory,
 * globals, tables or descriptors cross evaluations or tenants, as in Kubewarden's policy-server. For a
 * module rewritten for reset (src/wasm/resettable.ts) that is the instance the last evaluation used,
 * with the memory contents, globals and memory size it had when new written back and a new WASI — a
 * memory copy, where a new instance costs V8's whole instantiation and, later, collecting its memory:
 * 3–5 × the CPU per evaluation of Chainloop's TinyGo policy and of a Go one (bench/RESULTS.md). Other
 * modules get a new `WebAssembly.Instance` of the cached compiled module with a new WASI.
 *
 * What is reused is the host around it: one Extism plugin per script, argument set and settings, which
 * the SDK made for the policy's host proxy (src/wasm/host-proxy.ts), not for the policy itself. Its
 * per-call state (input, output, error, blocks) is reset by every call, and the vars a guest sets are
 * deleted after each evaluation, so the host too starts each evaluation as a new one would. Reusing it
 * removes the SDK's per-plugin set-up, which cost several times the instantiation of the policy itself.
 *
 * The instance for the next evaluation is readied while the worker is idle, once a result is on its way.
 */

/** What host functions need of the evaluation in progress (the SDK passes it as the host context). */
export interface Evaluation {
  task: ReadyTask;
  logs: GuestLogs;
  /** Status of the last guest HTTP request, for http_status_code. */
  httpStatus: number;
  /** HTTP and discover calls made so far (bounded by task.maxHostCalls). */
  hostCalls: number;
}

// biome-ignore lint/suspicious/noExplicitAny: the Extism SDK's own HostFunction type takes and returns any
type HostFunction = (cp: CallContext, ...args: any[]) => any;
type Imports = Record<string, Record<string, unknown>>;

/** An instance made ahead is sized for inputs up to this much, or the input that needed it if larger. */
const SPARE_INPUT_BYTES = 2 ** 20;
/** Hosts kept per worker (one per script, args and settings), least recently used dropped first. */
const MAX_HOSTS = 16;
/**
 * An instance whose memory grew more than this above its initial size is not reset but dropped: a kept
 * instance keeps all of its memory (in every kept host of every worker), and resetting zeroes what it
 * grew into. The policies measured grow by 0 (AssemblyScript, Go) to 128 KiB (TinyGo) for a 1 KiB
 * material; one that grows by megabytes spends far more on its own work than a new instance costs.
 */
const MAX_KEPT_GROWTH_BYTES = 4 * 2 ** 20;

/**
 * A policy instance, started as the SDK starts a plugin's module. An instance of a module rewritten
 * for reset (src/wasm/resettable.ts) keeps the state it had when new — memory contents and every
 * mutable global, the size the guest sees among them — and writes it back after an evaluation.
 */
export class PolicyInstance {
  /** Memory already counted as taken (the garbage budget's external memory); the initial state's copy is taken too. */
  #counted: number;

  private constructor(
    readonly instance: WebAssembly.Instance,
    readonly memory: WebAssembly.Memory | undefined,
    readonly wasi: GuestWasi | undefined,
    readonly initial: InitialState | undefined,
  ) {
    this.#counted = -(initial?.memory.byteLength ?? 0);
  }

  static make(task: ReadyTask, hostImports: Imports): PolicyInstance {
    const wasi = task.useWasi ? new GuestWasi() : undefined;
    const imports = wasi ? { ...hostImports, [WASI_MODULE]: wasi.imports } : hostImports;
    const instance = new WebAssembly.Instance(task.module, imports);
    wasi?.attach(instance);
    start(instance, wasi !== undefined);
    const memory = (task.reset?.memory ? instance.exports[task.reset.memory] : instance.exports.memory) as WebAssembly.Memory | undefined;
    return new PolicyInstance(instance, memory, wasi, task.reset && InitialState.of(instance, memory, task.reset));
  }

  /** Bytes of linear memory the guest has (with reset, the size it sees, not the real one). */
  get memoryBytes(): number {
    return this.initial?.size ? Number(this.initial.size.value) * PAGE_BYTES : (this.memory?.buffer.byteLength ?? 0);
  }

  /** Memory this instance took since last asked: all of it (and its initial state's copy) when new, what it grew by after that. */
  takenBytes(): number {
    const now = this.memory?.buffer.byteLength ?? 0;
    const taken = now - this.#counted;
    this.#counted = now;
    return taken;
  }

  /**
   * Puts the instance back into the state it had when new, with a new WASI. False when it cannot
   * (not rewritten for reset) or should not (its memory grew more than a kept instance may keep).
   */
  reset(): boolean {
    if (!this.initial) return false;
    const grown = (this.memory?.buffer.byteLength ?? 0) - this.initial.memory.byteLength;
    if (grown > MAX_KEPT_GROWTH_BYTES) return false;
    this.initial.restore(this.memory);
    this.wasi?.renew();
    return true;
  }
}

/** What a new instance holds that an evaluation can change: memory contents and mutable globals. */
class InitialState {
  private constructor(
    readonly memory: Uint8Array,
    readonly globals: WebAssembly.Global[],
    readonly values: unknown[],
    /** The memory size the guest sees, in pages (one of `globals`). */
    readonly size: WebAssembly.Global | undefined,
  ) {}

  static of(instance: WebAssembly.Instance, memory: WebAssembly.Memory | undefined, plan: ResetPlan): InitialState {
    const globals = plan.globals.map((name) => instance.exports[name] as WebAssembly.Global);
    return new InitialState(
      memory ? new Uint8Array(memory.buffer).slice() : new Uint8Array(),
      globals,
      globals.map((g) => g.value),
      plan.size ? (instance.exports[plan.size] as WebAssembly.Global) : undefined,
    );
  }

  restore(memory: WebAssembly.Memory | undefined): void {
    if (memory) {
      const bytes = new Uint8Array(memory.buffer);
      bytes.set(this.memory);
      // Pages the guest grew into: zero, as in a new instance that grows.
      bytes.fill(0, this.memory.byteLength);
    }
    this.globals.forEach((global, i) => {
      global.value = this.values[i];
    });
  }
}

/**
 * What @extism/extism 2.0.0-rc13 runs when it instantiates a plugin's module: with WASI, a reactor's
 * `_initialize` (a command's `_start` never runs); without, `_initialize` and then a command's `_start`.
 */
function start(instance: WebAssembly.Instance, wasi: boolean): void {
  const call = (name: string) => (instance.exports[name] as () => void)();
  const has = (name: string) => typeof instance.exports[name] === 'function';
  if (wasi) {
    if (has('_initialize')) call('_initialize');
  } else if (has('hs_init')) {
    call('hs_init');
  } else if (has('_initialize')) {
    call('_initialize');
    if (has('_start')) call('_start');
  } else if (has('_start')) {
    call('_start');
  }
  if (wasi && has('hs_init')) call('hs_init');
}

/** The Extism host one script and argument set runs in, kept across evaluations. */
export class Host {
  #imports: Imports = {};
  #current?: { evaluation: Evaluation; instance: PolicyInstance };
  /** The instance the next evaluation gets, made or reset while the worker was idle. */
  #next?: PolicyInstance;
  /** The instance the last finished evaluation used, to be reset for the next if it can be. */
  #spent?: PolicyInstance;
  /** Keys of the vars the guest set, deleted after each evaluation: the SDK keeps vars across calls. */
  readonly #varKeys = new Set<string>();
  /** The SDK's call context of this plugin (one per plugin; Execute hands it over). */
  #context?: CallContext;
  #plugin!: Plugin;

  /** Kept as long as the host: nothing of the task that made it (its input could be megabytes). */
  private constructor(readonly maxInputBytes: number) {}

  static async create(task: ReadyTask, maxInputBytes: number): Promise<Host> {
    const self = new Host(maxInputBytes);
    self.#plugin = await createPlugin(
      { wasm: [{ module: task.proxy.module }], config: task.args === undefined ? {} : { args: task.args } },
      {
        // WASI is given to each policy instance by the worker (src/worker/wasi.ts), never by Node's WASI.
        useWasi: false,
        functions: self.#hostFunctions(),
        logger: self.#console(),
        logLevel: task.logLevel,
        runInWorker: false,
        memory: {
          // Extism's blocks (input, output, allocations) live outside linear memory: the same cap, plus the input.
          maxPages: task.memoryLimitPages + Math.ceil(maxInputBytes / PAGE_BYTES) + 1,
          maxVarBytes: task.maxVarBytes,
        },
      },
    );
    const proxy = await self.#plugin.getInstance();
    task.proxy.proxied.forEach(({ module, name }, i) => {
      self.#imports[module] ??= {};
      self.#imports[module][name] = proxy.exports[String(i)];
    });
    return self;
  }

  /** A policy instance in its new state: the one readied while idle, the last one reset, or one made now. */
  instance(task: ReadyTask): PolicyInstance {
    const ready = this.#next ?? this.#reset();
    this.#next = undefined;
    return ready ?? PolicyInstance.make(task, this.#imports);
  }

  /** The last evaluation's instance, put back into its new state, if it can be. */
  #reset(): PolicyInstance | undefined {
    const spent = this.#spent;
    this.#spent = undefined;
    return spent?.reset() ? spent : undefined;
  }

  /** Runs `Execute` of `instance` inside the SDK's call; host functions see the evaluation as the host context. */
  async execute(instance: PolicyInstance, evaluation: Evaluation): Promise<Uint8Array | null> {
    this.#current = { evaluation, instance };
    try {
      const out = await this.#plugin.call(PROXY_EXECUTE, evaluation.task.input, evaluation);
      return out ? out.bytes() : null;
    } finally {
      this.#current = undefined;
      this.#forgetEvaluation();
      // Only now may it be reset. The SDK runs the guest before its call first awaits, but where it
      // suspends (JSPI) a `prepare` could run during the call: it must not hand this instance out again.
      this.#spent = instance;
    }
  }

  /**
   * What of an evaluation the SDK keeps across calls: the vars the guest set, and block 0, the one-byte
   * block the SDK allocates once per plugin and never resets (a guest can store_u8 to address 0).
   * Everything else of a call (input, output, error, other blocks) the SDK resets at the next call.
   */
  #forgetEvaluation(): void {
    for (const key of this.#varKeys) this.#context?.deleteVariable(key);
    this.#varKeys.clear();
    this.#context?.read(0n)?.bytes().fill(0);
  }

  /** While the worker is idle: the instance for the next evaluation. */
  prepare(task: ReadyTask): void {
    if (this.#next) return;
    try {
      this.#next = this.#reset() ?? PolicyInstance.make(task, this.#imports);
    } catch {
      // The next evaluation makes its own and reports the error.
    }
  }

  close(): void {
    this.#plugin.close().catch(() => {});
  }

  /** A fresh object per plugin: the SDK binds (and in worker mode mutates) what it is given. */
  #hostFunctions(): Record<string, Record<string, HostFunction>> {
    const evaluation = (cp: CallContext) => cp.hostContext<Evaluation | null>();
    return {
      [DAEMON_HOST_MODULE]: { var_set: this.#varSet(), ...httpFunctions(evaluation), [DISCOVER_FUNCTION]: discoverFunction(evaluation) },
      [PROXY_EXECUTE_MODULE]: {
        [PROXY_EXECUTE]: (cp: CallContext) => {
          this.#context = cp;
          (this.#current!.instance.instance.exports.Execute as () => unknown)();
        },
      },
    };
  }

  /**
   * Extism's var_set (same semantics: an unreadable address is ignored, a full store is the guest's
   * error), remembering the keys so the next evaluation starts without them.
   */
  #varSet(): HostFunction {
    return (cp: CallContext, keyOffset: bigint, valueOffset: bigint): void => {
      const key = cp.read(keyOffset)?.text();
      if (key === undefined) return;
      if (valueOffset === 0n) {
        cp.deleteVariable(key);
        return;
      }
      const value = cp.read(valueOffset);
      if (!value) return;
      try {
        cp.setVariable(key, value.bytes().slice());
      } catch (err) {
        cp.setError(err as Error);
        return;
      }
      this.#varKeys.add(key);
    };
  }

  /** The plugin-wide logger the SDK writes guest logs to, forwarding to the evaluation in progress. */
  #console(): Console {
    const forward =
      (level: keyof GuestLogs['console']) =>
      (...args: unknown[]) =>
        this.#current?.evaluation.logs.console[level](...args);
    return {
      trace: forward('trace'),
      debug: forward('debug'),
      info: forward('info'),
      log: forward('log'),
      warn: forward('warn'),
      error: forward('error'),
    } as unknown as Console;
  }
}

function keyOf(task: ReadyTask): string {
  return `${task.instanceKey}\u0000${task.args ?? ''}\u0000${task.logLevel}\u0000${task.maxVarBytes}`;
}

const hosts = new Map<string, Promise<Host>>();

/** The host for this task's script and args, made if needed (or remade for a larger input). */
export async function hostFor(task: ReadyTask): Promise<Host> {
  const key = keyOf(task);
  const kept = hosts.get(key);
  hosts.delete(key);
  const host = await kept?.catch(() => undefined);
  if (host && host.maxInputBytes >= task.input.byteLength) {
    hosts.set(key, kept!);
    return host;
  }
  host?.close();
  if (hosts.size >= MAX_HOSTS) {
    const [oldest, evicted] = hosts.entries().next().value as [string, Promise<Host>];
    hosts.delete(oldest);
    evicted.then(
      (h) => h.close(),
      () => {},
    );
  }
  const made = Host.create(task, Math.max(SPARE_INPUT_BYTES, task.input.byteLength));
  hosts.set(key, made);
  made.catch(() => hosts.delete(key));
  return made;
}
