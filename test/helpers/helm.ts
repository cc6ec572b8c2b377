import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ROOT } from './paths.js';

/** Helm itself, built by `make helm` from the version pinned in deploy/tools/go.mod. */
export const HELM = join(ROOT, 'build/bin/helm');

function withValues<T>(values: object, run: (file: string) => T): T {
  if (!existsSync(HELM)) throw new Error(`${HELM} is missing: run \`make helm\` (make test does)`);
  const dir = mkdtempSync(join(tmpdir(), 'policyd-helm-'));
  try {
    const file = join(dir, 'values.yaml');
    writeFileSync(file, JSON.stringify(values)); // JSON is YAML
    return run(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `helm template` of a chart with extra values: the rendered objects. */
export function helmTemplate(chart: string, values: object = {}, release = 'policyd'): Record<string, any>[] {
  const out = withValues(values, (file) => execFileSync(HELM, ['template', release, chart, '--values', file], { encoding: 'utf8' }));
  return parseAllDocuments(out)
    .map((d) => d.toJSON() as Record<string, any> | null)
    .filter((d): d is Record<string, any> => d !== null);
}

/** `helm lint --strict`; throws with Helm's output when it fails. */
export function helmLint(chart: string, values: object = {}): string {
  return withValues(values, (file) => execFileSync(HELM, ['lint', '--strict', chart, '--values', file], { encoding: 'utf8' }));
}
