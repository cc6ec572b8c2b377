import { readFile, realpath } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { MaterialKind } from '../gen/policyengine/v1/engine_pb.js';
import { PolicydError } from '../errors/policyd-error.js';
import { kindName } from '../materials/kinds.js';
import type { PulledArtifact } from '../oci/distribution.js';
import { policyLayers } from '../oci/policy-artifact.js';
import { isOciRef } from '../oci/reference.js';
import { sha256 } from './digest.js';
import type { SignatureVerifier } from '../oci/signatures.js';
import { decodeIfBase64Wasm, isWasm } from '../wasm/inspect.js';
import { parsePolicyDocument, scriptSources, type PolicyDocument, type PolicyInputSpec, type ScriptSource } from './document.js';

/** Where a policy comes from. */
export type PolicySource =
  | {
      type: 'document';
      bytes: Uint8Array;
      /** Script bytes by the relative path the document names them with. */
      scripts?: Record<string, Uint8Array>;
      /** Directory that relative script paths are read from, for documents read from disk. */
      baseDir?: string;
      label?: string;
    }
  | { type: 'ref'; ref: string; scripts?: Record<string, Uint8Array> }
  | { type: 'module'; bytes: Uint8Array; name: string; kinds: MaterialKind[] }
  | ({ type: 'artifact' } & PulledArtifact);

export interface ResolvedScript {
  kind: MaterialKind;
  bytes: Uint8Array;
  digest: string;
  /** How errors name it: `spec.policies.0 (policy.wasm)`. */
  label: string;
}

/** A policy's source with every script it needed inside: loading it again reads no file or URL. */
export type SelfContainedSource =
  | Extract<PolicySource, { type: 'module' | 'artifact' }>
  | { type: 'document'; bytes: Uint8Array; scripts: Record<string, Uint8Array>; label?: string };

export interface ResolvedPolicy {
  /** What gives this policy again, with the same digest, wherever its scripts came from. */
  replay: SelfContainedSource;
  name: string;
  description: string;
  /** metadata.finding_type; empty when findings are plain messages. */
  findingType: string;
  digest: string;
  inputs: PolicyInputSpec[];
  scripts: ResolvedScript[];
}

export interface LoaderOptions {
  /** `file://` refs must resolve inside this directory (a client must not read the whole disk); undefined: refused. */
  fileRoot?: string;
  /** Reads an http(s) ref (bounded in time and size, SSRF-guarded). */
  fetchRemote: (url: string) => Promise<Uint8Array>;
  /** Parses a document; the daemon does it off the main thread (document-parser.ts). Default: here. */
  parseDocument?: (bytes: Uint8Array, label: string) => Promise<PolicyDocument>;
  /** Pulls an `oci://` ref from its registry; undefined: OCI refs are refused. */
  pullArtifact?: (ref: string) => Promise<PulledArtifact>;
  /** Set: a policy loads only as an OCI artifact signed by one of the verifier's keys, unless unsigned sources are allowed. */
  signatures?: { verifier: SignatureVerifier; allowUnsigned: boolean };
}

const PIN = /@sha256:([0-9a-f]{64})$/;
const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Splits `path@sha256:<hex>` into the location and its expected digest. */
export function splitPin(ref: string): { location: string; pin?: string } {
  const m = PIN.exec(ref);
  return m ? { location: ref.slice(0, m.index), pin: `sha256:${m[1]}` } : { location: ref };
}

function checkPin(bytes: Uint8Array, pin: string | undefined, what: string): void {
  // The digest of what was read is not quoted: it would tell a caller the hash of any file it can name.
  if (pin !== undefined && sha256(bytes) !== pin)
    throw new PolicydError('DIGEST_MISMATCH', `digest mismatch for ${what}: its content is not ${pin}`);
}

function stripFileScheme(location: string): string {
  return location.startsWith('file://') ? location.slice('file://'.length) : location;
}

function isRemote(location: string): boolean {
  return /^https?:\/\//i.test(location);
}

function unsupportedScheme(location: string): PolicydError | undefined {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(location)?.[1]?.toLowerCase();
  if (scheme === undefined || scheme === 'file' || scheme === 'http' || scheme === 'https') return undefined;
  if (scheme === 'chainloop') {
    return new PolicydError(
      'UNSUPPORTED_REF',
      `${location}: chainloop:// refs need a Chainloop control plane; fetch the document there and send it as policy_document`,
    );
  }
  return new PolicydError(
    'UNSUPPORTED_REF',
    `${location}: scheme ${scheme}:// is not supported; send the bytes in the request (policy_document / scripts) or use an oci://, file:// or https:// ref`,
  );
}

function outside(root: string, path: string): boolean {
  const rel = relative(root, path);
  // `..x` is a name inside the root (the kubelet's `..data`, `..<timestamp>`), `../x` is not.
  return rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel);
}

/** Reads `path` below `root`, also after following symlinks; errors never quote what was read. */
async function readInside(root: string, path: string, what: string): Promise<Uint8Array> {
  const full = resolve(root, path);
  const refuse = () =>
    new PolicydError('UNSUPPORTED_REF', `${what} ${path} is outside the directory this daemon reads policies from (${root})`);
  if (outside(root, full)) throw refuse();
  const cannot = () => new PolicydError('SCRIPT_NOT_FOUND', `${what} ${path} cannot be read below ${root}`);
  const real = await realpath(full).catch(() => undefined);
  if (real === undefined) throw cannot();
  if (outside(await realpath(root), real)) throw refuse();
  try {
    return await readFile(real);
  } catch {
    throw cannot();
  }
}

/** Where relative script refs of a document resolve: its directory, or its URL. */
type Base = { dir: string } | { url: string } | undefined;

async function scriptBytes(
  source: ScriptSource,
  scripts: Record<string, Uint8Array>,
  base: Base,
  options: LoaderOptions,
): Promise<{ bytes: Uint8Array; external?: string; label: string }> {
  if (source.embedded !== undefined) {
    return { bytes: Buffer.from(source.embedded, 'utf8'), label: `${source.field}.embedded` };
  }
  const ref = source.location!;
  const label = `${source.field} (${ref})`;
  const { location, pin } = splitPin(ref);
  const unsupported = unsupportedScheme(location);
  if (unsupported) throw unsupported;
  const key = stripFileScheme(location);
  const given = scripts[location] ?? scripts[key] ?? scripts[key.replace(/^\.\//, '')];
  let bytes: Uint8Array;
  if (given !== undefined) {
    bytes = given;
  } else if (isRemote(location)) {
    bytes = await options.fetchRemote(location);
  } else if (base && 'url' in base) {
    bytes = await options.fetchRemote(new URL(key, base.url).href);
  } else if (base) {
    bytes = await readInside(base.dir, key, `script of ${source.field}`);
  } else {
    throw new PolicydError(
      'SCRIPT_NOT_FOUND',
      `${source.field} refers to "${ref}", which is not in the request's scripts map; send its bytes in LoadPolicyRequest.scripts under the key "${key}" (or embed it)`,
    );
  }
  checkPin(bytes, pin, label);
  // `location` is the first key scriptBytes looks up: a replay finds the bytes without reading anything.
  return { bytes, external: location, label };
}

async function resolveDocument(
  bytes: Uint8Array,
  scripts: Record<string, Uint8Array>,
  base: Base,
  label: string,
  options: LoaderOptions,
): Promise<ResolvedPolicy> {
  const doc = options.parseDocument ? await options.parseDocument(bytes, label) : parsePolicyDocument(bytes, label);
  const resolved: ResolvedScript[] = [];
  const externals: string[] = [];
  const read: Record<string, Uint8Array> = {};
  for (const source of scriptSources(doc)) {
    const got = await scriptBytes(source, scripts, base, options);
    const wasm = decodeIfBase64Wasm(got.bytes);
    if (!isWasm(wasm)) {
      throw new PolicydError(
        'UNSUPPORTED_SCRIPT',
        `${got.label} of policy "${doc.metadata.name}" is not WebAssembly (Chainloop would run it as Rego): only WASM scripts are supported by this daemon; compile the policy to an Extism WebAssembly module`,
      );
    }
    const digest = sha256(wasm);
    if (got.external !== undefined) {
      externals.push(`${source.field}\t${digest}`);
      read[got.external] = got.bytes;
    }
    resolved.push({ kind: source.kind, bytes: wasm, digest, label: got.label });
  }
  // The document's own digest (Chainloop's reference digest) identifies the content only when every
  // script is inside it; otherwise the scripts' digests are folded in.
  const documentDigest = sha256(bytes);
  const digest = externals.length === 0 ? documentDigest : sha256([documentDigest, ...externals].join('\n'));
  return {
    replay: { type: 'document', bytes, scripts: read, label },
    name: doc.metadata.name,
    description: doc.metadata.description ?? '',
    findingType: doc.metadata.findingType === 'FINDING_TYPE_UNSPECIFIED' ? '' : (doc.metadata.findingType ?? ''),
    digest,
    inputs: doc.spec.inputs ?? [],
    scripts: resolved,
  };
}

/**
 * A pulled artifact as a policy: every blob checked against the manifest, the signature against the
 * configured keys, the document resolved with the modules of the artifact only. Its digest is the
 * manifest's, which is what a registry, a signature and a control plane name it by.
 */
async function resolveArtifact(artifact: PulledArtifact, options: LoaderOptions): Promise<ResolvedPolicy> {
  const digest = sha256(artifact.manifest);
  const layers = policyLayers(artifact.manifest, artifact.ref);
  const blob = (d: string) => {
    const bytes = artifact.blobs[d];
    if (bytes === undefined || sha256(bytes) !== d) {
      throw new PolicydError('INVALID_ARTIFACT', `${artifact.ref}: blob ${d} is missing or does not have its digest`);
    }
    return bytes;
  };
  if (options.signatures) options.signatures.verifier.verify(digest, artifact.signatures, artifact.ref);
  const scripts: Record<string, Uint8Array> = {};
  for (const [title, layer] of layers.scripts) scripts[title] = blob(layer.digest);
  const resolved = await resolveDocument(blob(layers.document.digest), scripts, undefined, artifact.ref, options);
  return { ...resolved, digest, replay: { type: 'artifact', ...artifact } };
}

/** Refuses what cannot carry a signature when signatures are required. */
function checkSigned(source: PolicySource, options: LoaderOptions): void {
  const required = options.signatures && !options.signatures.allowUnsigned;
  if (!required || source.type === 'artifact' || (source.type === 'ref' && isOciRef(source.ref))) return;
  throw new PolicydError(
    'SIGNATURE_NOT_VERIFIED',
    'this daemon loads only signed policies from an OCI registry (signatures.keys is set), and this one was sent as bytes or a file; push it with wasm-policyd push --sign-key and load its oci:// ref, or set signatures.allowUnsigned',
  );
}

/** Reads a policy from wherever it comes from into bytes, checking pins and naming every fault. */
export async function resolvePolicy(source: PolicySource, options: LoaderOptions): Promise<ResolvedPolicy> {
  checkSigned(source, options);
  switch (source.type) {
    case 'artifact':
      return resolveArtifact(source, options);
    case 'document':
      return resolveDocument(
        source.bytes,
        source.scripts ?? {},
        source.baseDir === undefined ? undefined : { dir: source.baseDir },
        source.label ?? 'policy document',
        options,
      );
    case 'ref': {
      if (isOciRef(source.ref)) {
        if (!options.pullArtifact) throw new PolicydError('UNSUPPORTED_REF', `${source.ref}: this engine has no OCI registry access`);
        return resolveArtifact(await options.pullArtifact(source.ref), options);
      }
      const { location, pin } = splitPin(source.ref);
      const unsupported = unsupportedScheme(location);
      if (unsupported) throw unsupported;
      if (isRemote(location)) {
        const bytes = await options.fetchRemote(location);
        checkPin(bytes, pin, `policy document ${location}`);
        return resolveDocument(bytes, source.scripts ?? {}, { url: location }, location, options);
      }
      const path = stripFileScheme(location);
      if (options.fileRoot === undefined) {
        throw new PolicydError(
          'UNSUPPORTED_REF',
          `${location}: file refs are off on this daemon; send the document as policy_document, or start it with --file-root <dir>`,
        );
      }
      const bytes = await readInside(options.fileRoot, path, 'policy document');
      checkPin(bytes, pin, `policy document ${path}`);
      const full = resolve(options.fileRoot, path);
      return resolveDocument(bytes, source.scripts ?? {}, { dir: dirname(full) }, path, options);
    }
    case 'module': {
      if (!NAME.test(source.name)) {
        throw new PolicydError(
          'INVALID_REQUEST',
          `name ${JSON.stringify(source.name)} is not a valid policy name: use lowercase letters, digits and dashes (e.g. "my-policy")`,
        );
      }
      const bytes = decodeIfBase64Wasm(source.bytes);
      const digest = sha256(bytes);
      const kinds = source.kinds.length > 0 ? source.kinds : [MaterialKind.UNSPECIFIED];
      return {
        replay: source,
        name: source.name,
        description: '',
        findingType: '',
        digest,
        inputs: [],
        scripts: kinds.map((kind) => ({ kind, bytes, digest, label: `wasm_module (${kindName(kind)})` })),
      };
    }
  }
}
