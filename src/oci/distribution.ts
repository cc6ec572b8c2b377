/**
 * Policies to and from a registry: `push` uploads a policy's files (and a signature) and tags the
 * manifest; `pull` brings back everything a load needs — manifest, blobs and, when asked, the
 * signature bundles — so the loader can check it all without the network.
 */
import type { KeyObject } from 'node:crypto';
import { PolicydError } from '../errors/policyd-error.js';
import { packPolicy, policyLayers, type PolicyFiles } from './policy-artifact.js';
import { atDigest, formatOciReference, type OciReference } from './reference.js';
import { MANIFEST_MEDIA_TYPE, type RegistryClient } from './registry-client.js';
import { MAX_BUNDLE_BYTES, MAX_SIGNATURES, bundleLayers, signManifest, signatureArtifact } from './signatures.js';

/** A policy artifact with every byte it names: what the loader resolves and the state directory keeps. */
export interface PulledArtifact {
  /** `oci://registry/repository@sha256:…`, for messages. */
  ref: string;
  manifest: Uint8Array;
  /** Blobs by digest. */
  blobs: Record<string, Uint8Array>;
  /** Sigstore bundles found beside the manifest (fetched only when signatures are checked). */
  signatures: Uint8Array[];
}

export async function pullPolicy(
  client: RegistryClient,
  ref: OciReference,
  options: { maxBytes: number; signatures: boolean },
): Promise<PulledArtifact> {
  const manifest = await client.manifest(ref);
  const at = formatOciReference(atDigest(ref, manifest.digest));
  const layers = policyLayers(manifest.bytes, at);
  if (layers.totalBytes > options.maxBytes) {
    throw new PolicydError('POLICY_BUDGET', `${at} holds ${layers.totalBytes} bytes, more than this daemon loads (maxPolicyMb)`);
  }
  const blobs: Record<string, Uint8Array> = {};
  for (const layer of [layers.document, ...layers.scripts.values()]) {
    blobs[layer.digest] ??= await client.blob(ref, layer.digest, layer.size);
  }
  const signatures: Uint8Array[] = [];
  if (options.signatures) {
    const referrers = (await client.referrers(ref, manifest.digest)).slice(0, MAX_SIGNATURES);
    for (const referrer of referrers) {
      const signature = await client.manifest(atDigest(ref, referrer.digest));
      for (const layer of bundleLayers(signature.bytes)) {
        if (layer.size <= MAX_BUNDLE_BYTES) signatures.push(await client.blob(ref, layer.digest, MAX_BUNDLE_BYTES));
      }
    }
  }
  return { ref: at, manifest: manifest.bytes, blobs, signatures };
}

export interface PushResult {
  digest: string;
  /** The pushed manifest by digest: what a replica can always fetch again. */
  pinned: string;
  signed: boolean;
}

/** Uploads the files, the manifest under `ref`'s tag (or digest), and a signature when a key is given. */
export async function pushPolicy(
  client: RegistryClient,
  ref: OciReference,
  files: PolicyFiles,
  signer?: { privateKey: KeyObject; publicKey: KeyObject },
): Promise<PushResult> {
  const packed = packPolicy(files);
  if (ref.digest !== undefined && ref.digest !== packed.digest) {
    throw new PolicydError(
      'DIGEST_MISMATCH',
      `${formatOciReference(ref)}: this policy's manifest is ${packed.digest}, not the digest in the ref`,
    );
  }
  for (const bytes of packed.blobs.values()) await client.pushBlob(ref, bytes);
  await client.pushManifest(ref, ref.tag ?? packed.digest, packed.manifest, MANIFEST_MEDIA_TYPE);
  if (signer) {
    const bundle = signManifest(packed.digest, signer.privateKey, signer.publicKey);
    const subject = { mediaType: MANIFEST_MEDIA_TYPE, digest: packed.digest, size: packed.manifest.byteLength };
    const signature = signatureArtifact(subject, bundle);
    for (const bytes of signature.blobs.values()) await client.pushBlob(ref, bytes);
    const { subjectIndexed } = await client.pushManifest(ref, signature.descriptor.digest, signature.manifest, MANIFEST_MEDIA_TYPE);
    // Registries without the referrers API are told through the tag schema, as cosign and oras do.
    if (!subjectIndexed) await client.addToReferrersTag(ref, packed.digest, signature.descriptor);
  }
  return {
    digest: packed.digest,
    pinned: formatOciReference(atDigest(ref, packed.digest)),
    signed: signer !== undefined,
  };
}
