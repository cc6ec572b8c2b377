import { PolicydError } from '../errors/policyd-error.js';
import type { PolicyInputSpec } from './document.js';

/** What a guest reads from Extism config key "args": each value a string, or a list when there are several. */
export type GuestArgs = Record<string, string | string[]>;

export interface ComputedArgs {
  args: GuestArgs;
  /** Names of given arguments the policy does not declare; Chainloop drops them with a warning. */
  ignored: string[];
}

/**
 * Chainloop's ComputeArguments + getInputArguments: when the policy declares inputs, only those are
 * kept, required ones must be present and defaults fill empty values; every value is then split on
 * newlines and unescaped commas (`\,` is a literal comma), trimmed, and empties dropped.
 */
export function computeArgs(inputs: PolicyInputSpec[] | undefined, given: Record<string, string>): ComputedArgs {
  const values: Record<string, string> = {};
  const ignored: string[] = [];
  if (!inputs?.length) {
    Object.assign(values, given);
  } else {
    const declared = new Set(inputs.map((i) => i.name));
    for (const name of Object.keys(given)) if (!declared.has(name)) ignored.push(name);
    for (const input of inputs) {
      const value = given[input.name] ?? '';
      if (value === '' && input.required) {
        throw new PolicydError(
          'MISSING_INPUT',
          `missing required input "${input.name}"${input.description ? ` (${input.description})` : ''}: pass it in args`,
        );
      }
      const chosen = value === '' ? (input.default ?? '') : value;
      if (chosen !== '') values[input.name] = chosen;
    }
  }
  const args: GuestArgs = {};
  for (const [name, value] of Object.entries(values)) {
    const parts = splitArgValue(value);
    if (parts.length === 1) args[name] = parts[0]!;
    else if (parts.length > 1) args[name] = parts;
  }
  return { args, ignored };
}

export function splitArgValue(value: string): string[] {
  const out: string[] = [];
  for (const line of value.split('\n')) {
    let current = '';
    for (let i = 0; i < line.length; i++) {
      const c = line[i];
      if (c === '\\' && line[i + 1] === ',') {
        current += ',';
        i++;
      } else if (c === ',') {
        out.push(current);
        current = '';
      } else {
        current += c;
      }
    }
    out.push(current);
  }
  return out.map((s) => s.trim()).filter((s) => s !== '');
}
