import { errorMessage } from '../errors/policyd-error.js';
import { withLocalPolicy } from './local-policy.js';
import type { RegistryFlags } from './push.js';

/**
 * `wasm-policyd lint`: the document is valid, every script is WebAssembly with an `Execute` export,
 * imports only what the host provides and instantiates. Exit 0 and "policy is valid!" or the problem.
 */
export async function runLint(policyPath: string, registry: RegistryFlags = {}): Promise<boolean> {
  try {
    const policy = await withLocalPolicy(policyPath, async (_engine, p) => p, {}, registry);
    process.stdout.write(`policy is valid! (${policy.name}, ${policy.scripts.length} script(s), ${policy.digest})\n`);
    return true;
  } catch (err) {
    process.stderr.write(`${policyPath}: ${errorMessage(err)}\n1 issue found\n`);
    return false;
  }
}
