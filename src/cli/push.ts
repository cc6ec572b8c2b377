import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { PolicyEngine } from '../engine/policy-engine.js';
import { pushPolicy } from '../oci/distribution.js';
import { parseOciReference } from '../oci/reference.js';
import { RegistryClient } from '../oci/registry-client.js';
import { DEFAULTS } from '../config/defaults.js';

export interface RegistryFlags {
  plainHttp?: boolean;
  dockerConfig?: string;
}

/** The CLI's registry access: the user's own machine, so private addresses are allowed. */
export function cliRegistryClient(ref: string, flags: RegistryFlags): RegistryClient {
  return new RegistryClient({
    plainHttp: flags.plainHttp ? [parseOciReference(ref).registry] : [],
    allowPrivateNetwork: true,
    dockerConfig: flags.dockerConfig,
    requestTimeoutMs: DEFAULTS.http.requestTimeoutMs,
  });
}

/**
 * `wasm-policyd push`: checks the policy as `lint` does (a broken policy is never published), then
 * uploads the document and every module it reads as one artifact, tags it, and signs it when given a
 * key. Prints the digest and the pinned ref a control plane can load on any replica.
 */
export async function runPush(policyPath: string, target: string, flags: RegistryFlags & { signKey?: string }): Promise<void> {
  const ref = parseOciReference(target);
  const signer = flags.signKey
    ? await readFile(flags.signKey).then((pem) => {
        const privateKey = createPrivateKey({ key: pem, passphrase: process.env.POLICYD_SIGN_KEY_PASSPHRASE });
        return { privateKey, publicKey: createPublicKey(privateKey) };
      })
    : undefined;
  const engine = new PolicyEngine({ threads: 1 });
  let loaded: Awaited<ReturnType<PolicyEngine['load']>>;
  try {
    loaded = await engine.load({ type: 'document', bytes: await readFile(policyPath), baseDir: dirname(policyPath), label: policyPath });
  } finally {
    await engine.close();
  }
  const { replay, policy } = loaded;
  if (replay.type !== 'document') throw new Error(`${policyPath} is not a policy document`);
  const result = await pushPolicy(
    cliRegistryClient(target, flags),
    ref,
    {
      document: { title: basename(policyPath), bytes: replay.bytes },
      scripts: replay.scripts,
      annotations: {
        'org.opencontainers.image.title': policy.name,
        ...(policy.description ? { 'org.opencontainers.image.description': policy.description.trim() } : {}),
      },
    },
    signer,
  );
  process.stdout.write(
    `pushed policy ${policy.name} to ${target}${result.signed ? ' (signed)' : ''}\ndigest: ${result.digest}\n${result.pinned}\n`,
  );
}
