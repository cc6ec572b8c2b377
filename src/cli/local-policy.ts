import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PolicyEngine, type EngineOptions } from '../engine/policy-engine.js';
import { isOciRef } from '../oci/reference.js';
import type { LoadedPolicy } from '../policies/registry.js';
import { cliRegistryClient, type RegistryFlags } from './push.js';

/**
 * The local commands' engine: one worker, the policy loaded — a document at `policyPath` (its
 * scripts read beside it) or an `oci://` ref pulled from its registry — `use` run, the engine closed
 * whatever happens.
 */
export async function withLocalPolicy<T>(
  policyPath: string,
  use: (engine: PolicyEngine, policy: LoadedPolicy) => Promise<T>,
  options: EngineOptions = {},
  registry: RegistryFlags = {},
): Promise<T> {
  const oci = isOciRef(policyPath);
  const engine = new PolicyEngine({ threads: 1, ...(oci ? { oci: { client: cliRegistryClient(policyPath, registry) } } : {}), ...options });
  try {
    const { policy } = await engine.load(
      oci
        ? { type: 'ref', ref: policyPath }
        : { type: 'document', bytes: await readFile(policyPath), baseDir: dirname(policyPath), label: policyPath },
    );
    return await use(engine, policy);
  } finally {
    await engine.close();
  }
}
