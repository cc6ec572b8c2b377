import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PolicyEngine, type EngineOptions } from '../engine/policy-engine.js';
import type { LoadedPolicy } from '../policies/registry.js';

/**
 * The local commands' engine: one worker, the policy document at `policyPath` loaded (its scripts
 * read beside it), `use` run, the engine closed whatever happens.
 */
export async function withLocalPolicy<T>(
  policyPath: string,
  use: (engine: PolicyEngine, policy: LoadedPolicy) => Promise<T>,
  options: EngineOptions = {},
): Promise<T> {
  const engine = new PolicyEngine({ threads: 1, ...options });
  try {
    const { policy } = await engine.load({
      type: 'document',
      bytes: await readFile(policyPath),
      baseDir: dirname(policyPath),
      label: policyPath,
    });
    return await use(engine, policy);
  } finally {
    await engine.close();
  }
}
