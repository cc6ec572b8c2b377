/**
 * A policy as an OCI artifact (image-spec 1.1 artifact guidance, as ORAS writes them): the empty
 * config, the policy document as one layer and each WebAssembly module it names as another, titled
 * with the path the document refers to it by. The module layers use the media type Kubewarden and
 * wasm-to-oci use for WebAssembly, so generic tools recognise them.
 *
 *   artifactType  application/vnd.wasm-policyd.policy.v1
 *   config        application/vnd.oci.empty.v1+json ({})
 *   layers        application/vnd.wasm-policyd.policy.document.v1+yaml   title: policy.yaml
 *                 application/vnd.wasm.content.layer.v1+wasm             title: policy.wasm
 *
 * No creation time is written: the same policy always gives the same manifest, so its digest names
 * its content (pushing it again changes nothing).
 */
import { PolicydError } from '../errors/policyd-error.js';
import { MANIFEST_MEDIA_TYPE, type Descriptor } from './registry-client.js';
import { sha256 } from '../policies/digest.js';

export const POLICY_ARTIFACT_TYPE = 'application/vnd.wasm-policyd.policy.v1';
export const DOCUMENT_MEDIA_TYPE = 'application/vnd.wasm-policyd.policy.document.v1+yaml';
export const WASM_MEDIA_TYPE = 'application/vnd.wasm.content.layer.v1+wasm';
export const EMPTY_MEDIA_TYPE = 'application/vnd.oci.empty.v1+json';
export const TITLE = 'org.opencontainers.image.title';
const EMPTY_CONFIG = Buffer.from('{}');
/** Layers a policy artifact may have: a document and its modules. */
export const MAX_LAYERS = 64;

export interface PolicyFiles {
  document: { title: string; bytes: Uint8Array };
  /** Module bytes by the path the document names them with. */
  scripts: Record<string, Uint8Array>;
  /** Written on the manifest (the policy's name and description). */
  annotations?: Record<string, string>;
}

export interface PackedArtifact {
  manifest: Uint8Array;
  digest: string;
  /** Every blob the manifest names, by digest (the config included). */
  blobs: Map<string, Uint8Array>;
}

function layer(mediaType: string, title: string, bytes: Uint8Array): Descriptor {
  return { mediaType, digest: sha256(bytes), size: bytes.byteLength, annotations: { [TITLE]: title } };
}

export function packPolicy(files: PolicyFiles): PackedArtifact {
  const blobs = new Map<string, Uint8Array>([[sha256(EMPTY_CONFIG), EMPTY_CONFIG]]);
  const layers = [layer(DOCUMENT_MEDIA_TYPE, files.document.title, files.document.bytes)];
  blobs.set(layers[0]!.digest, files.document.bytes);
  for (const [title, bytes] of Object.entries(files.scripts).sort(([a], [b]) => a.localeCompare(b))) {
    const d = layer(WASM_MEDIA_TYPE, title, bytes);
    layers.push(d);
    blobs.set(d.digest, bytes);
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_MEDIA_TYPE,
      artifactType: POLICY_ARTIFACT_TYPE,
      config: {
        mediaType: EMPTY_MEDIA_TYPE,
        digest: sha256(EMPTY_CONFIG),
        size: EMPTY_CONFIG.byteLength,
        data: EMPTY_CONFIG.toString('base64'),
      },
      layers,
      ...(files.annotations && Object.keys(files.annotations).length > 0 ? { annotations: files.annotations } : {}),
    }),
  );
  return { manifest, digest: sha256(manifest), blobs };
}

export interface PolicyLayers {
  document: Descriptor;
  /** Module layers by title. */
  scripts: Map<string, Descriptor>;
  totalBytes: number;
}

/**
 * Reads a manifest as a policy artifact, before any blob is fetched: what it holds and how large it
 * says that is. `label` names it in errors.
 */
export function policyLayers(manifestBytes: Uint8Array, label: string): PolicyLayers {
  const invalid = (why: string) =>
    new PolicydError('INVALID_ARTIFACT', `${label} is not a wasm-policyd policy artifact: ${why}; publish policies with wasm-policyd push`);
  let manifest: { mediaType?: unknown; artifactType?: unknown; config?: Descriptor; layers?: unknown };
  try {
    manifest = JSON.parse(Buffer.from(manifestBytes).toString('utf8'));
  } catch {
    throw invalid('its manifest is not JSON');
  }
  if (manifest.mediaType !== MANIFEST_MEDIA_TYPE) throw invalid(`its manifest is ${String(manifest.mediaType)}, not an OCI image manifest`);
  // OCI 1.0 clients name the artifact in config.mediaType instead of artifactType.
  const type = manifest.artifactType ?? manifest.config?.mediaType;
  if (type !== POLICY_ARTIFACT_TYPE) throw invalid(`its artifact type is ${String(type)}, not ${POLICY_ARTIFACT_TYPE}`);
  if (!Array.isArray(manifest.layers)) throw invalid('it has no layers');
  if (manifest.layers.length > MAX_LAYERS) throw invalid(`it has ${manifest.layers.length} layers, more than ${MAX_LAYERS}`);
  let document: Descriptor | undefined;
  const scripts = new Map<string, Descriptor>();
  let totalBytes = 0;
  for (const l of manifest.layers as Descriptor[]) {
    if (typeof l?.digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(l.digest) || !Number.isSafeInteger(l.size) || l.size < 0) {
      throw invalid('a layer has no sha256 digest or size');
    }
    totalBytes += l.size;
    const title = l.annotations?.[TITLE];
    if (l.mediaType === DOCUMENT_MEDIA_TYPE) {
      if (document) throw invalid('it has two policy documents');
      document = l;
    } else if (l.mediaType === WASM_MEDIA_TYPE) {
      if (!title) throw invalid(`module layer ${l.digest} has no ${TITLE} annotation (the path the document names it by)`);
      if (scripts.has(title)) throw invalid(`two module layers are titled ${title}`);
      scripts.set(title, l);
    } else {
      throw invalid(`layer ${l.digest} has media type ${String(l.mediaType)}`);
    }
  }
  if (!document) throw invalid(`it has no ${DOCUMENT_MEDIA_TYPE} layer`);
  return { document, scripts, totalBytes };
}
