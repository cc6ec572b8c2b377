import type { MessagePort } from 'node:worker_threads';
import type { ErrorData } from '../errors/policyd-error.js';
import type { EvaluableMaterial } from '../materials/evaluable-input.js';
import type { GuestHttpRequest } from '../net/http-fetch.js';
import type { ModuleFacts } from '../wasm/inspect.js';
import type { ResetPlan } from '../wasm/resettable.js';

/** What crosses from the main thread to a pool worker and back. Plain data only (structured clone). */

export type GuestLogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

export interface HostChannel {
  /** The main thread answers requests posted here (engine/host-bridge.ts). */
  port: MessagePort;
  /** Int32 flag the worker waits on while the main thread does the I/O. */
  flag: SharedArrayBuffer;
  /** Longest a single call may block the guest, in ms. */
  timeoutMs: number;
}

/**
 * What every evaluation of one script of one loaded policy shares: the compiled module and the limits
 * it runs under. A worker is sent it once and keeps it; calls name it by `id` (structured-cloning two
 * compiled modules and a dozen fields was a sixth of the main thread's work per evaluation).
 */
export interface ScriptSetup {
  /** Unique in this process for this content: a worker may keep it as long as it likes. */
  id: string;
  /** Compiled once at load; structured-cloned, never recompiled. */
  module: WebAssembly.Module;
  /** What the Extism SDK instantiates in the policy's place, and the imports it re-exports (src/wasm/host-proxy.ts). */
  proxy: ModuleFacts['proxy'];
  /** Identifies the compiled module (script digest and memory cap): instances made ahead are keyed by it. */
  instanceKey: string;
  useWasi: boolean;
  /** How a used instance is put back into its new state; absent: a new instance per evaluation. */
  reset?: ResetPlan;
  /** The module's linear memory is capped at this (written into it at load); also bounds Extism's blocks. */
  memoryLimitPages: number;
  /** Largest output the guest may set. */
  maxOutputBytes: number;
  /** Size of the Extism var store (Chainloop: 1 MiB). */
  maxVarBytes: number;
  policyName: string;
  logLevel: GuestLogLevel;
  maxLogEntries: number;
  /** HTTP and discover calls one evaluation may make. */
  maxHostCalls: number;
  /** Violations one script's output may hold. */
  maxViolations: number;
}

/** One evaluation's own part: what a pool task carries. */
export interface ScriptCall {
  /** The setup's id, or the setup itself for a worker that may not have it yet (engine/pool.ts). */
  setup: string | ScriptSetup;
  /**
   * The material to build the Extism input from (materials/evaluable-input.ts), which the worker does so
   * that the main thread does not parse its JSON; or the input itself, when the main thread needs it too
   * (an EvaluateBatch's shared input, several scripts, raw data).
   */
  input: Uint8Array | EvaluableMaterial;
  /** JSON for Extism config key "args"; absent when there are no args, as in Chainloop. */
  args?: string;
  includeRawOutput: boolean;
  /** Hosts `http_request` may reach (checked here first, and again for every redirect on the main thread). */
  allowedHosts: string[];
  /** Present when the script makes host calls that need the main thread (HTTP, discover). */
  host?: HostChannel;
  /** Only instantiate (load-time readiness check); `Execute` is not called. */
  probe?: boolean;
  /** Report when the worker took the task, and when instantiation and execution ended (for traces). */
  timed?: boolean;
  /** Its place on the pool's run board, when it may queue in a worker behind another (worker/run-board.ts). */
  slot?: number;
}

/**
 * The BroadcastChannel on which the engine names the setups of policies it unloaded or replaced, so
 * that every worker forgets them (and the compiled modules they hold) at once.
 */
export const RETIRED_SETUPS_CHANNEL = 'wasm-policyd:retired-setups';

/** A worker's answer to a call naming a setup it does not have: the pool sends the call again with it. */
export const UNKNOWN_SETUP = 'unknown-setup';

/** One evaluation as a worker receives it: its setup and its call, together. */
export type ScriptTask = Omit<ScriptSetup, 'id'> & Omit<ScriptCall, 'setup'>;

/** One evaluation as a worker runs it: its input built. */
export type ReadyTask = ScriptTask & { input: Uint8Array };

/** Epoch milliseconds (fractional; comparable across threads): when the worker started, instantiated, finished. */
export interface ScriptTimings {
  started: number;
  instantiated: number;
  finished: number;
}

export interface LogRecord {
  level: GuestLogLevel;
  message: string;
}

export interface ScriptViolation {
  message: string;
  /** The raw structured finding, when the policy used `findings` or object violations. */
  finding?: Record<string, unknown>;
}

export interface ScriptResult {
  skipped: boolean;
  skipReason: string;
  violations: ScriptViolation[];
  ignore: boolean;
}

export type ScriptOutcome = (
  | { ok: true; result: ScriptResult; logs: LogRecord[]; output?: Uint8Array }
  | { ok: false; error: ErrorData; logs: LogRecord[] }
) & { timings?: ScriptTimings };

export type HostRequest = { op: 'http'; request: GuestHttpRequest } | { op: 'discover'; digest: string; kind: string };

/** `body` null: nothing to hand the guest (discover found nothing). */
export type HostResponse = { ok: true; status: number; body: Uint8Array | null } | { ok: false; error: ErrorData };
