import createPlugin, { type CallContext, type Plugin } from '@extism/extism';
import { DISCOVER_FUNCTION, DISCOVER_NAMESPACES, EXTISM_ENV } from '../wasm/host-surface.js';
import { PAGE_BYTES } from '../wasm/memory-limit.js';
import { discoverFunction } from './discover.js';
import type { GuestLogs } from './guest-logs.js';
import { httpFunctions } from './http-client.js';
import type { ScriptTask } from './protocol.js';

/**
 * Fresh plugin instances, made ahead of time. Every evaluation still gets an instance nobody has used
 * (no guest memory, globals or vars cross evaluations), but the instantiation for the next evaluation
 * of the same script and args happens while this worker is idle, off the critical path.
 *
 * An instance is bound to the evaluation it serves only when that evaluation starts: its host
 * functions and logger read the current binding.
 */
export interface Binding {
  task?: ScriptTask;
  logs?: GuestLogs;
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

/** A fresh object per plugin: the SDK binds (and in worker mode mutates) what it is given. */
function hostFunctions(binding: Binding): HostFunctions {
  const host = () => binding.task?.host;
  const functions: HostFunctions = {
    [EXTISM_ENV]: { ...httpFunctions(host, () => binding.task?.allowedHosts ?? []) },
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

function create(task: ScriptTask, binding: Binding, maxInputBytes: number): Promise<Plugin> {
  return createPlugin(
    { wasm: [{ module: task.module }], config: task.args === undefined ? {} : { args: task.args } },
    {
      useWasi: task.useWasi,
      enableWasiOutput: false,
      functions: hostFunctions(binding),
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
}

function discard(spare: Spare): void {
  spare.plugin.then((p) => p.close()).catch(() => {});
}

/** An instance for this evaluation: the spare made for it if there is one, else a new one. */
export async function acquire(task: ScriptTask): Promise<{ plugin: Plugin; binding: Binding }> {
  const key = keyOf(task);
  const spare = spares.get(key);
  spares.delete(key);
  if (spare && spare.maxInputBytes >= task.input.byteLength) {
    const plugin = await spare.plugin.catch(() => undefined);
    if (plugin) return { plugin, binding: spare.binding };
  } else if (spare) {
    discard(spare);
  }
  const binding: Binding = {};
  return { plugin: await create(task, binding, task.input.byteLength), binding };
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
