import { MaterialKind } from '../gen/policyengine/v1/engine_pb.js';

/**
 * Best-effort kind detection for `eval` without `--kind`, following the shapes Chainloop's validators
 * accept first. Anything JSON that is not recognised is EVIDENCE; anything else is ARTIFACT.
 */
export function detectKind(content: Uint8Array): MaterialKind {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(content.buffer, content.byteOffset, content.byteLength).toString('utf8'));
  } catch {
    return MaterialKind.ARTIFACT;
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return MaterialKind.EVIDENCE;
  const o = doc as Record<string, unknown>;
  if (o.bomFormat === 'CycloneDX') return MaterialKind.SBOM_CYCLONEDX_JSON;
  if (typeof o.spdxVersion === 'string') return MaterialKind.SBOM_SPDX_JSON;
  if (typeof o.payloadType === 'string' && typeof o.payload === 'string') return MaterialKind.ATTESTATION;
  if (typeof o.dsseEnvelope === 'object' && o.dsseEnvelope !== null) return MaterialKind.ATTESTATION;
  if (typeof o['@context'] === 'string' && o['@context'].includes('openvex')) return MaterialKind.OPENVEX;
  if (Array.isArray(o.runs) && typeof o.version === 'string') return MaterialKind.SARIF;
  return MaterialKind.EVIDENCE;
}
