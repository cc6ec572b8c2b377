import { errorMessage } from '../errors/policyd-error.js';
import { kindName } from '../materials/kinds.js';
import { withLocalPolicy } from './local-policy.js';
import type { RegistryFlags } from './push.js';

/**
 * `wasm-policyd lint`: the document is valid, every script is WebAssembly with an `Execute` export,
 * imports only what the host provides and instantiates. Exit 0 and "policy is valid!" or the problem;
 * a valid script that cannot be reset between evaluations (src/wasm/resettable.ts) gets a note, since
 * each of its evaluations then pays for a new instance.
 */
export async function runLint(policyPath: string, registry: RegistryFlags = {}): Promise<boolean> {
  try {
    const policy = await withLocalPolicy(policyPath, async (_engine, p) => p, {}, registry);
    process.stdout.write(`policy is valid! (${policy.name}, ${policy.scripts.length} script(s), ${policy.digest})\n`);
    for (const script of policy.scripts) {
      if (script.facts.resetRefused) {
        process.stdout.write(
          `note: script ${script.digest} (${kindName(script.kind)}) gets a new instance for every evaluation, which costs more: it cannot be reset because ${script.facts.resetRefused}\n`,
        );
      }
    }
    return true;
  } catch (err) {
    process.stderr.write(`${policyPath}: ${errorMessage(err)}\n1 issue found\n`);
    return false;
  }
}
