/**
 * Policy signatures as cosign 3 writes them: a Sigstore bundle (v0.3) holding a DSSE envelope whose
 * in-toto statement names the signed manifest's digest (predicate `https://sigstore.dev/cosign/sign/v1`),
 * stored as an OCI artifact whose `subject` is that manifest — found through the referrers API, or the
 * `sha256-<hex>` tag on registries without it.
 *
 * Keys only: verification needs no network (no Fulcio certificate, no Rekor entry; the thresholds for
 * both are zero). Keyless verification would need Sigstore's trusted root (TUF), an identity and issuer
 * to match against the certificate, and Rekor or a timestamp authority for the signing time.
 */
import { createHash, sign, type KeyObject } from 'node:crypto';
import { bundleFromJSON, bundleToJSON, type Bundle } from '@sigstore/bundle';
import { dsse } from '@sigstore/core';
import { Verifier, toSignedEntity, type TrustMaterial } from '@sigstore/verify';
import { PolicydError, errorMessage } from '../errors/policyd-error.js';
import { EMPTY_MEDIA_TYPE } from './policy-artifact.js';
import { MANIFEST_MEDIA_TYPE, type Descriptor } from './registry-client.js';
import { sha256 } from '../policies/digest.js';

export const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';
const IN_TOTO_PAYLOAD = 'application/vnd.in-toto+json';
/** Signature artifacts looked at per policy, and the size of one bundle. */
export const MAX_SIGNATURES = 16;
export const MAX_BUNDLE_BYTES = 2 ** 20;

/** cosign's "hint": the base64 SHA-256 of the public key's DER form. */
function keyHint(key: KeyObject): string {
  return createHash('sha256')
    .update(key.export({ type: 'spki', format: 'der' }))
    .digest('base64');
}

/** A Sigstore bundle signing `manifestDigest` with `privateKey`, as `cosign sign --key` makes one. */
export function signManifest(manifestDigest: string, privateKey: KeyObject, publicKey: KeyObject): Uint8Array {
  const [algorithm, hex] = manifestDigest.split(':') as [string, string];
  const statement = { _type: STATEMENT_TYPE, subject: [{ digest: { [algorithm]: hex } }], predicateType: SIGN_PREDICATE, predicate: {} };
  const payload = Buffer.from(JSON.stringify(statement));
  const signature = sign(
    privateKey.asymmetricKeyType === 'ed25519' ? null : 'sha256',
    dsse.preAuthEncoding(IN_TOTO_PAYLOAD, payload),
    privateKey,
  );
  const bundle = bundleFromJSON({
    mediaType: BUNDLE_MEDIA_TYPE,
    verificationMaterial: {
      publicKey: { hint: keyHint(publicKey) },
      tlogEntries: [],
      timestampVerificationData: { rfc3161Timestamps: [] },
    },
    dsseEnvelope: {
      payload: payload.toString('base64'),
      payloadType: IN_TOTO_PAYLOAD,
      signatures: [{ sig: signature.toString('base64'), keyid: '' }],
    },
  });
  return Buffer.from(JSON.stringify(bundleToJSON(bundle)));
}

const SIGNATURE_ANNOTATIONS = { 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': SIGN_PREDICATE };

/** The artifact that carries a bundle next to the manifest it signs, and its descriptor for a referrers index. */
export function signatureArtifact(
  subject: Descriptor,
  bundle: Uint8Array,
): { manifest: Uint8Array; descriptor: Descriptor; blobs: Map<string, Uint8Array> } {
  const empty = Buffer.from('{}');
  const layer = { mediaType: BUNDLE_MEDIA_TYPE, digest: sha256(bundle), size: bundle.byteLength };
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_MEDIA_TYPE,
      artifactType: BUNDLE_MEDIA_TYPE,
      config: { mediaType: EMPTY_MEDIA_TYPE, digest: sha256(empty), size: empty.byteLength },
      layers: [layer],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
      annotations: SIGNATURE_ANNOTATIONS,
    }),
  );
  return {
    manifest,
    descriptor: {
      mediaType: MANIFEST_MEDIA_TYPE,
      digest: sha256(manifest),
      size: manifest.byteLength,
      artifactType: BUNDLE_MEDIA_TYPE,
      annotations: SIGNATURE_ANNOTATIONS,
    },
    blobs: new Map([
      [sha256(empty), empty],
      [layer.digest, bundle],
    ]),
  };
}

/** The bundle layers of a referrer's manifest (none when it carries something else). */
export function bundleLayers(manifest: Uint8Array): Descriptor[] {
  try {
    const parsed = JSON.parse(Buffer.from(manifest).toString('utf8')) as { layers?: Descriptor[] };
    return (parsed.layers ?? []).filter((l) => l?.mediaType === BUNDLE_MEDIA_TYPE && typeof l.digest === 'string');
  } catch {
    return [];
  }
}

export interface VerificationKey {
  /** How the key is named in messages and logs (its file). */
  name: string;
  key: KeyObject;
}

const NO_AUTHORITIES = { certificateAuthorities: [], timestampAuthorities: [], tlogs: [], ctlogs: [] };

/** The statement's subject digests, when the bundle is a cosign signature (and not, say, an attestation). */
function signedDigests(bundle: Bundle): string[] {
  if (bundle.content.$case !== 'dsseEnvelope') return [];
  const envelope = bundle.content.dsseEnvelope;
  if (envelope.payloadType !== IN_TOTO_PAYLOAD) return [];
  let statement: { _type?: string; predicateType?: string; subject?: { digest?: Record<string, string> }[] };
  try {
    statement = JSON.parse(envelope.payload.toString('utf8'));
  } catch {
    return [];
  }
  if (statement?._type !== STATEMENT_TYPE || statement.predicateType !== SIGN_PREDICATE) return [];
  const subjects = Array.isArray(statement?.subject) ? statement.subject : [];
  return subjects.flatMap((s) => Object.entries(s?.digest ?? {}).map(([alg, hex]) => `${alg}:${hex}`));
}

/**
 * Accepts a manifest when one of its bundles is a cosign signature of exactly that digest by one of the
 * configured keys. Every reason a bundle was not accepted is kept for the error.
 */
export class SignatureVerifier {
  constructor(readonly keys: readonly VerificationKey[]) {}

  verify(manifestDigest: string, bundles: readonly Uint8Array[], label: string): { key: string } {
    const reasons: string[] = [];
    for (const bytes of bundles) {
      let bundle: Bundle;
      try {
        bundle = bundleFromJSON(JSON.parse(Buffer.from(bytes).toString('utf8')));
      } catch (err) {
        reasons.push(`a bundle is not a Sigstore bundle (${errorMessage(err)})`);
        continue;
      }
      if (!signedDigests(bundle).includes(manifestDigest)) {
        reasons.push('a bundle signs something else than this manifest (or is not a cosign signature)');
        continue;
      }
      for (const { name, key } of this.keys) {
        const trust: TrustMaterial = { ...NO_AUTHORITIES, publicKey: () => ({ publicKey: key, validFor: () => true }) };
        try {
          new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(toSignedEntity(bundle));
          return { key: name };
        } catch (err) {
          reasons.push(`not signed by ${name} (${errorMessage(err)})`);
        }
      }
    }
    throw new PolicydError(
      'SIGNATURE_NOT_VERIFIED',
      bundles.length === 0
        ? `${label} is not signed, and this daemon loads only policies signed by one of its keys (${this.keys.map((k) => k.name).join(', ')}); sign it with wasm-policyd push --sign-key or cosign sign --key`
        : `${label} has no signature by a key this daemon trusts (${this.keys.map((k) => k.name).join(', ')}): ${[...new Set(reasons)].join('; ')}`,
    );
  }
}
