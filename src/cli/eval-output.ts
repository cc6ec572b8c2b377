import { chainloopFinding } from './findings.js';
import { goJson } from './go-json.js';

/** What `eval` needs from an evaluation, local or over gRPC. */
export interface EvalView {
  findingType: string;
  violations: { message: string; finding?: Record<string, unknown> }[];
  skipped: boolean;
  skipReasons: string[];
  raw: { input: Uint8Array; output: Uint8Array }[];
}

function json(bytes: Uint8Array): unknown {
  return JSON.parse(Buffer.from(bytes).toString('utf8'));
}

/** The JSON `chainloop policy devel eval` prints (3-space indent; `debug_info` with --debug). */
export function renderEvalOutput(view: EvalView, debug: boolean): string {
  const findings = view.violations
    .map((v) => (v.finding ? chainloopFinding(view.findingType, v.finding) : undefined))
    .filter((f) => f !== undefined);
  const result: Record<string, unknown> = { violations: view.violations.map((v) => v.message) };
  if (findings.length > 0) result.findings = findings;
  result.skip_reasons = view.skipReasons;
  result.skipped = view.skipped;
  const out: Record<string, unknown> = { result };
  if (debug) {
    out.debug_info = {
      inputs: view.raw.slice(0, 1).map((r) => json(r.input)),
      raw_results: view.raw.map((r) => json(r.output)),
    };
  }
  return goJson(out);
}
