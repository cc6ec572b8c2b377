import type { MessagePort } from 'node:worker_threads';
import type { ErrorData } from '../errors/policyd-error.js';

/** What crosses from the main thread to a pool worker and back. Plain data only (structured clone). */

export type GuestLogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

export interface HttpChannel {
  /** Main-thread side answers requests posted here (see net/http-bridge.ts). */
  port: MessagePort;
  /** Int32 flag the worker waits on while the main thread performs the request. */
  flag: SharedArrayBuffer;
  allowedHosts: string[];
  /** Longest a single request may block the guest, in ms. */
  timeoutMs: number;
}

export interface ScriptTask {
  /** Compiled once at load; structured-cloned, never recompiled. */
  module: WebAssembly.Module;
  /** The exact Extism input bytes. */
  input: Uint8Array;
  /** JSON for Extism config key "args"; absent when there are no args, as in Chainloop. */
  args?: string;
  useWasi: boolean;
  policyName: string;
  logLevel: GuestLogLevel;
  maxLogEntries: number;
  includeRawOutput: boolean;
  http?: HttpChannel;
  /** Only instantiate (load-time readiness check); `Execute` is not called. */
  probe?: boolean;
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

export type ScriptOutcome =
  | { ok: true; result: ScriptResult; logs: LogRecord[]; output?: Uint8Array }
  | { ok: false; error: ErrorData; logs: LogRecord[] };

export interface HttpBridgeRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: Uint8Array;
}

export type HttpBridgeResponse =
  | { ok: true; status: number; body: Uint8Array }
  | { ok: false; error: ErrorData };
