import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PolicyEngine } from '../engine/policy-engine.js';
import { errorMessage } from '../errors/policyd-error.js';

/**
 * `wasm-policyd lint`: the document is valid, every script is WebAssembly with an `Execute` export,
 * imports only what the host provides and instantiates. Exit 0 and "policy is valid!" or the problem.
 */
export async function runLint(policyPath: string): Promise<boolean> {
  const engine = new PolicyEngine({ threads: 1, maxQueue: 4 });
  try {
    const { policy } = await engine.load({ type: 'document', bytes: await readFile(policyPath), baseDir: dirname(policyPath), label: policyPath });
    process.stdout.write(`policy is valid! (${policy.name}, ${policy.scripts.length} script(s), ${policy.digest})\n`);
    return true;
  } catch (err) {
    process.stderr.write(`${policyPath}: ${errorMessage(err)}\n1 issue found\n`);
    return false;
  } finally {
    await engine.close();
  }
}
