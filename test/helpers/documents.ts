import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface EmbeddedScript {
  kind?: string;
  wasm: Uint8Array;
}

/** A Chainloop Policy document (JSON) whose scripts are embedded as base64, as a control plane ships them. */
export function embeddedDocument(name: string, scripts: EmbeddedScript[], inputs?: object[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      apiVersion: 'chainloop.dev/v1',
      kind: 'Policy',
      metadata: { name },
      spec: {
        ...(inputs ? { inputs } : {}),
        policies: scripts.map((s) => ({ ...(s.kind ? { kind: s.kind } : {}), embedded: Buffer.from(s.wasm).toString('base64') })),
      },
    }),
  );
}

/** An example's policy.yaml plus the script it names, as LoadPolicy's policy_document + scripts. */
export function exampleRequest(policyYaml: string): { document: Buffer; scripts: Record<string, Buffer> } {
  return {
    document: readFileSync(policyYaml),
    scripts: { 'policy.wasm': readFileSync(join(dirname(policyYaml), 'policy.wasm')) },
  };
}
