import { readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { PolicyEngine } from '../engine/policy-engine.js';
import { PolicydError, errorMessage } from '../errors/policyd-error.js';
import { detectKind } from '../materials/detect.js';
import { kindFromName } from '../materials/kinds.js';
import { isOciRef } from '../oci/reference.js';
import { withLocalPolicy } from './local-policy.js';
import type { RegistryFlags } from './push.js';
import { renderReport, type CaseResult, type ReportFormat } from './test-report.js';
import { describeIssues } from '../errors/issues.js';

/**
 * `wasm-policyd test`: table tests for a policy, like `opa test` or `conftest verify`. A YAML file
 * lists cases — a material, its kind and args, and what the evaluation must give:
 *
 *   cases:
 *     - name: flags an unlicensed component
 *       material: materials/fail.json
 *       kind: SBOM_CYCLONEDX_JSON        # optional: detected from the material
 *       args: { allowed: "MIT" }
 *       expect:
 *         violations: ["…"]              # exactly these, in order
 *         skipped: false
 *         skipReasons: []
 *         error: MISSING_INPUT           # or: the evaluation fails with this ErrorInfo reason
 */
const caseSchema = z.strictObject({
  name: z.string().min(1),
  material: z.string().min(1),
  kind: z.string().optional(),
  args: z.record(z.string(), z.string()).default({}),
  expect: z.strictObject({
    violations: z.array(z.string()).optional(),
    violationsContain: z.array(z.string()).optional(),
    skipped: z.boolean().optional(),
    skipReasons: z.array(z.string()).optional(),
    error: z.string().optional(),
  }),
});
const fileSchema = z.strictObject({ cases: z.array(caseSchema).min(1) });
type Case = z.infer<typeof caseSchema>;

async function runCase(engine: PolicyEngine, digest: string, base: string, c: Case): Promise<string | undefined> {
  const content = await readFile(resolve(base, c.material));
  const kind = c.kind === undefined ? detectKind(content) : kindFromName(c.kind);
  if (kind === undefined) return `unknown kind "${c.kind}"`;
  const e = c.expect;
  try {
    const { result } = await engine.evaluate({ policy: digest, material: { content, kind, name: basename(c.material) }, args: c.args });
    if (e.error) return `expected error ${e.error}, but the evaluation succeeded`;
    const got = { violations: result.violations.map((v) => v.message), skipped: result.skipped, skipReasons: result.skipReasons };
    const problems: string[] = [];
    if (e.violations && !isDeepStrictEqual(got.violations, e.violations))
      problems.push(`violations ${JSON.stringify(got.violations)}, expected ${JSON.stringify(e.violations)}`);
    for (const v of e.violationsContain ?? [])
      if (!got.violations.includes(v)) problems.push(`no violation ${JSON.stringify(v)} in ${JSON.stringify(got.violations)}`);
    if (e.skipped !== undefined && got.skipped !== e.skipped) problems.push(`skipped ${got.skipped}, expected ${e.skipped}`);
    if (e.skipReasons && !isDeepStrictEqual(got.skipReasons, e.skipReasons))
      problems.push(`skip reasons ${JSON.stringify(got.skipReasons)}, expected ${JSON.stringify(e.skipReasons)}`);
    return problems.length ? problems.join('; ') : undefined;
  } catch (err) {
    const reason = err instanceof PolicydError ? err.reason : 'INTERNAL';
    if (e.error === reason) return undefined;
    return `failed with ${reason}: ${errorMessage(err).split('\n')[0]}`;
  }
}

/** Runs the cases and prints the report in `format`. Returns whether all passed. */
export async function runPolicyTests(
  policyPath: string,
  casesPath?: string,
  format: ReportFormat = 'text',
  registry: RegistryFlags = {},
): Promise<boolean> {
  if (casesPath === undefined && isOciRef(policyPath)) throw new Error(`${policyPath}: give the test cases with --cases`);
  const file = casesPath ?? join(dirname(policyPath), 'policy.test.yaml');
  const parsed = fileSchema.safeParse(parseYaml(await readFile(file, 'utf8')));
  if (!parsed.success) {
    throw new Error(`${file}: ${describeIssues(parsed.error)}`);
  }
  return withLocalPolicy(
    policyPath,
    async (engine, policy) => {
      const results: CaseResult[] = [];
      for (const c of parsed.data.cases) {
        const started = performance.now();
        const problem = await runCase(engine, policy.digest, dirname(file), c);
        results.push({ name: c.name, problem, seconds: (performance.now() - started) / 1000 });
      }
      process.stdout.write(renderReport(policy.name, results, format));
      return results.every((r) => r.problem === undefined);
    },
    {},
    registry,
  );
}
