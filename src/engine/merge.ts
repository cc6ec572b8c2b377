import type { ScriptResult, ScriptViolation } from '../worker/protocol.js';

export interface PolicyViolation extends ScriptViolation {
  subject: string;
}

export interface MergedResult {
  violations: PolicyViolation[];
  skipped: boolean;
  skipReasons: string[];
  /** No script result remained: every one asked to be ignored, or none applies to the material. */
  ignored: boolean;
}

/**
 * Chainloop's per-policy merge: ignored results are dropped; `skipped` is the AND of the rest;
 * skip reasons only when skipped; violations concatenated with the policy name as subject.
 */
export function mergeResults(policyName: string, results: ScriptResult[]): MergedResult {
  const kept = results.filter((r) => !r.ignore);
  if (kept.length === 0) return { violations: [], skipped: false, skipReasons: [], ignored: true };
  const skipped = kept.every((r) => r.skipped);
  return {
    violations: kept.flatMap((r) => r.violations.map((v) => ({ subject: policyName, ...v }))),
    skipped,
    skipReasons: skipped ? kept.map((r) => r.skipReason).filter((s) => s !== '') : [],
    ignored: false,
  };
}
