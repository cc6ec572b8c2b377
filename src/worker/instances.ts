import createPlugin, { type CallContext, type Plugin } from '@extism/extism';
import { DISCOVER_FUNCTION, DISCOVER_NAMESPACES, EXTISM_ENV } from '../wasm/host-surface.js';
import { PAGE_BYTES } from '../wasm/memory-limit.js';
import { discoverFunction } from './discover.js';
import type { GuestLogs } from './guest-logs.js';
import { httpFunctions } from './http-client.js';
import type { ScriptTask } from './protocol.js';
import { GuestWasi } from './wasi.js';

/**
 * Plugin instances for this worker's evaluations. By default, fresh instances made ahead of time:
 * every evaluation still gets an instance nobody has used (no guest memory, globals or vars cross
 * evaluations), but the instantiation for the next evaluation of the same script and args happens
 * while this worker is idle, off the critical path. A policy that opted into reused instances keeps
 * one per script and args instead, reset between evaluations.
 *
 * An instance is bound to the evaluation it serves only when that evaluation starts: its host
 * functions and logger read the current binding.
 */
export interface Binding {
  task?: ScriptTask;
  logs?: GuestLogs;
  /** Vars the guest set, so a reused instance can be cleared: the SDK's reset() keeps vars. */
  vars?: { context: CallContext; keys: Set<string> };
}

/**
 * Extism's var_set (same semantics: an unreadable address is ignored, a full store is the guest's
 * error), remembering the keys so a reused instance starts the next evaluation without them.
 */
function varSet(binding: Binding) {
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
    binding.vars ??= { context: cp, keys: new Set() };
    binding.vars.keys.add(key);
  };
}

interface Spare {
  plugin: Promise<Plugin>;
  binding: Binding;
  /** Largest input this instance's Extism memory was sized for. */
  maxInputBytes: number;
}

type HostFunctions = Record<string, Record<string, (cp: CallContext, ...args: any[]) => any>>;

const MAX_SPARES = 16;
/** A spare is sized for inputs up to this much, or the last input of its script if larger. */
const SPARE_INPUT_BYTES = 2 ** 20;
const spares = new Map<string, Spare>();

/** ISOLATION_REUSED_INSTANCE: idle instances by key, and how many evaluations each has served. */
interface Reusable {
  plugin: Plugin;
  binding: Binding;
  maxInputBytes: number;
  uses: number;
}
const MAX_USES = 1000;
const reusable = new Map<string, Reusable>();

/** A fresh object per plugin: the SDK binds (and in worker mode mutates) what it is given. */
function hostFunctions(binding: Binding): HostFunctions {
  const host = () => binding.task?.host;
  const functions: HostFunctions = {
    [EXTISM_ENV]: { var_set: varSet(binding), ...httpFunctions(host, () => binding.task?.allowedHosts ?? []) },
  };
  const discover = discoverFunction(host);
  for (const ns of DISCOVER_NAMESPACES) functions[ns] = { [DISCOVER_FUNCTION]: discover };
  return functions;
}

function boundConsole(binding: Binding): Console {
  const forward = (level: keyof GuestLogs['console']) => (...args: unknown[]) => binding.logs?.console[level](...args);
  return { trace: forward('trace'), debug: forward('debug'), info: forward('info'), log: forward('log'), warn: forward('warn'), error: forward('error') } as unknown as Console;
}

function keyOf(task: ScriptTask): string {
  return `${task.instanceKey}\u0000${task.args ?? ''}\u0000${task.logLevel}\u0000${task.maxVarBytes}`;
}

async function create(task: ScriptTask, binding: Binding, maxInputBytes: number): Promise<Plugin> {
  const wasi = task.useWasi ? new GuestWasi() : undefined;
  const plugin = await createPlugin(
    { wasm: [{ module: task.module }], config: task.args === undefined ? {} : { args: task.args } },
    {
      // The module's WASI imports were renamed at load and are served by GuestWasi, never by Node's WASI.
      useWasi: false,
      functions: { ...hostFunctions(binding), ...wasi?.hostFunctions() },
      logger: boundConsole(binding),
      logLevel: task.logLevel,
      runInWorker: false,
      memory: {
        // Extism's blocks (input, output, allocations) live outside linear memory: the same cap, plus the input.
        maxPages: task.memoryLimitPages + Math.ceil(maxInputBytes / PAGE_BYTES) + 1,
        maxVarBytes: task.maxVarBytes,
      },
    },
  );
  wasi?.attach(await plugin.getInstance());
  return plugin;
}

function discard(spare: Spare): void {
  spare.plugin.then((p) => p.close()).catch(() => {});
}

export interface Acquired {
  plugin: Plugin;
  binding: Binding;
  /** Evaluations this instance served before (reused-instance isolation only). */
  uses: number;
  maxInputBytes: number;
}

/**
 * An instance for this evaluation: with reuse opted in, the idle instance of this script and args;
 * otherwise the spare made for it, or a new one.
 */
export async function acquire(task: ScriptTask): Promise<Acquired> {
  const key = keyOf(task);
  if (task.reuseInstance) {
    const idle = reusable.get(key);
    reusable.delete(key);
    if (idle && idle.maxInputBytes >= task.input.byteLength) return idle;
    idle?.plugin.close().catch(() => {});
    const binding: Binding = {};
    const maxInputBytes = Math.max(SPARE_INPUT_BYTES, task.input.byteLength);
    return { plugin: await create(task, binding, maxInputBytes), binding, uses: 0, maxInputBytes };
  }
  const spare = spares.get(key);
  spares.delete(key);
  if (spare && spare.maxInputBytes >= task.input.byteLength) {
    const plugin = await spare.plugin.catch(() => undefined);
    if (plugin) return { plugin, binding: spare.binding, uses: 0, maxInputBytes: spare.maxInputBytes };
  } else if (spare) {
    discard(spare);
  }
  const binding: Binding = {};
  return { plugin: await create(task, binding, task.input.byteLength), binding, uses: 0, maxInputBytes: task.input.byteLength };
}

/**
 * After an evaluation: a fresh-instance evaluation closes its instance and has the next one made; a
 * reused instance is reset (Extism memory and vars) and kept, unless the evaluation failed, its input
 * was large or the instance has served long enough.
 */
export function release(task: ScriptTask, instance: Acquired, failed: boolean): void {
  instance.binding.task = instance.binding.logs = undefined;
  const keep = task.reuseInstance && !failed && instance.uses + 1 < MAX_USES && task.input.byteLength <= SPARE_INPUT_BYTES;
  if (keep) {
    const key = keyOf(task);
    const vars = instance.binding.vars;
    for (const name of vars?.keys ?? []) vars!.context.deleteVariable(name);
    vars?.keys.clear();
    void instance.plugin.reset().then(() => {
      const other = reusable.get(key);
      if (other) other.plugin.close().catch(() => {});
      reusable.set(key, { ...instance, uses: instance.uses + 1 });
    });
    return;
  }
  // The SDK's contract; with the worker's own WASI nothing native is held, so nothing waits for it.
  instance.plugin.close().catch(() => {});
  // Once the result is on its way, this idle worker instantiates the next evaluation's instance.
  if (!task.reuseInstance && !task.probe) setImmediate(() => prepareNext(task));
}

/** Makes the instance the next evaluation of this script and args will use. */
export function prepareNext(task: ScriptTask): void {
  const key = keyOf(task);
  if (spares.has(key)) return;
  if (spares.size >= MAX_SPARES) {
    const [oldest, spare] = spares.entries().next().value as [string, Spare];
    spares.delete(oldest);
    discard(spare);
  }
  const binding: Binding = {};
  const maxInputBytes = Math.max(SPARE_INPUT_BYTES, task.input.byteLength);
  const plugin = create(task, binding, maxInputBytes);
  plugin.catch(() => spares.delete(key));
  spares.set(key, { plugin, binding, maxInputBytes });
}
