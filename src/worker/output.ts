import { PolicydError } from '../errors/policyd-error.js';
import type { ScriptResult, ScriptViolation } from './protocol.js';

/**
 * Parses a guest's output exactly as Chainloop's engine does: a JSON object with `skipped`,
 * `skip_reason` (singular), `violations` (strings or {message} objects), `findings` (objects with a
 * `message`, taking precedence when non-empty) and `ignore`; unknown keys ignored; empty output is
 * an error.
 */

/** Go's name for the JSON type, as Chainloop's messages print it. */
function goType(value: unknown): string {
  if (value === null) return '<nil>';
  if (Array.isArray(value)) return '[]interface {}';
  if (typeof value === 'object') return 'map[string]interface {}';
  if (typeof value === 'number') return 'float64';
  if (typeof value === 'boolean') return 'bool';
  return typeof value;
}

function outputError(detail: string): PolicydError {
  return new PolicydError('INVALID_OUTPUT', `failed to parse policy output: ${detail}`);
}

function field<T>(doc: Record<string, unknown>, key: string, type: 'boolean' | 'string', fallback: T): T {
  const value = doc[key];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== type) {
    throw outputError(
      `json: cannot unmarshal ${goType(value)} into Go struct field .${key} of type ${type === 'boolean' ? 'bool' : 'string'}`,
    );
  }
  return value as T;
}

function list(doc: Record<string, unknown>, key: string): unknown[] {
  const value = doc[key];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value))
    throw outputError(`json: cannot unmarshal ${goType(value)} into Go struct field .${key} of type []interface {}`);
  return value;
}

function structured(item: Record<string, unknown>, policy: string, what: 'violation' | 'finding'): ScriptViolation {
  if (!('message' in item)) {
    throw new PolicydError('INVALID_OUTPUT', `${what} in policy "${policy}": missing required "message" field in structured violation`);
  }
  if (typeof item.message !== 'string') {
    throw new PolicydError(
      'INVALID_OUTPUT',
      `${what} in policy "${policy}": "message" field must be a string, got ${goType(item.message)}`,
    );
  }
  return { message: item.message, finding: item };
}

export function parseOutput(output: Uint8Array | null, policy: string): ScriptResult {
  if (output === null || output.byteLength === 0) throw outputError('unexpected end of JSON input');
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(output.buffer, output.byteOffset, output.byteLength).toString('utf8'));
  } catch (err) {
    throw outputError(err instanceof Error ? err.message : String(err));
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw outputError(`json: cannot unmarshal ${goType(doc)} into Go value of type engine.policyOutput`);
  }
  const o = doc as Record<string, unknown>;
  const findings = list(o, 'findings');
  let violations: ScriptViolation[];
  if (findings.length > 0) {
    violations = findings.map((f) => {
      if (f === null || typeof f !== 'object' || Array.isArray(f)) {
        throw new PolicydError('INVALID_OUTPUT', `finding in policy "${policy}": finding must be a JSON object: got ${goType(f)}`);
      }
      return structured(f as Record<string, unknown>, policy, 'finding');
    });
  } else {
    violations = list(o, 'violations').map((v) => {
      if (typeof v === 'string') return { message: v };
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) return structured(v as Record<string, unknown>, policy, 'violation');
      throw new PolicydError('INVALID_OUTPUT', `violation in policy "${policy}": violation must be a string or object, got ${goType(v)}`);
    });
  }
  return {
    skipped: field(o, 'skipped', 'boolean', false),
    skipReason: field(o, 'skip_reason', 'string', ''),
    violations,
    ignore: field(o, 'ignore', 'boolean', false),
  };
}
