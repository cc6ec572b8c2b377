import { PolicydError, errorMessage, type ErrorData } from '../errors/policyd-error.js';
import { WASIProcExit } from './wasi.js';
import {
  httpForbiddenMessage,
  memoryMessage,
  runtimeErrorMessage,
  timeoutMessage,
  unknownErrorMessage,
} from '../errors/chainloop-messages.js';

const PLUGIN_ERROR = 'Plugin-originated error: ';
/** go-sdk's panic text for a denied host, which Chainloop's error mapping reads: a guest error carrying it is classified alike. */
const HTTP_DENIED = /HTTP request to '(.+?)' is not allowed/;

/**
 * Turns what @extism/extism throws into Chainloop's categories and texts: error_set → POLICY_ERROR,
 * traps → POLICY_PANIC, a denied host → HTTP_FORBIDDEN. The daemon's own host functions throw typed
 * PolicydErrors, which pass through; the text rules are for what the SDK and guests throw.
 */
export function classifyGuestError(err: unknown, phase: 'create' | 'call', memoryExhausted = false): ErrorData {
  if (memoryExhausted) return { reason: 'POLICY_MEMORY', message: memoryMessage() };
  if (err instanceof PolicydError) return err.toData();
  const text = errorMessage(err);
  const denied = HTTP_DENIED.exec(text);
  if (denied) return { reason: 'HTTP_FORBIDDEN', message: httpForbiddenMessage(denied[1]!) };
  if (text.includes('context deadline exceeded')) return { reason: 'POLICY_TIMEOUT', message: timeoutMessage() };
  const varFull = /var memory limit exceeded: .*/.exec(text);
  if (varFull) return { reason: 'VAR_STORE_FULL', message: unknownErrorMessage(`Variable store is full (${varFull[0]})`) };
  if (/out of memory|memory limit exceeded/i.test(text)) return { reason: 'POLICY_MEMORY', message: memoryMessage() };
  const prefix = phase === 'create' ? 'failed to create WASM plugin: ' : '';
  // wazero's text for a guest that called proc_exit.
  if (err instanceof WASIProcExit)
    return { reason: 'POLICY_ERROR', message: unknownErrorMessage(`${prefix}module closed with exit_code(${err.code})`) };
  if (text.startsWith(PLUGIN_ERROR)) {
    return { reason: 'POLICY_ERROR', message: unknownErrorMessage(prefix + text.slice(PLUGIN_ERROR.length)) };
  }
  if (err instanceof WebAssembly.RuntimeError) {
    const runtime = /runtime error: ([^(]+?)(?:\s+\(recovered by wazero\)|$)/m.exec(text);
    if (runtime) return { reason: 'POLICY_PANIC', message: runtimeErrorMessage(runtime[1]!.trim()) };
    return { reason: 'POLICY_PANIC', message: unknownErrorMessage(`${prefix}wasm error: ${text}`) };
  }
  if (err instanceof RangeError && /call stack/i.test(text)) {
    return { reason: 'POLICY_PANIC', message: unknownErrorMessage(`${prefix}wasm error: stack overflow`) };
  }
  return { reason: 'POLICY_ERROR', message: unknownErrorMessage(prefix + text) };
}
