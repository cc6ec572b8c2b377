import { hash } from 'node:crypto';
import { PolicydError, errorMessage } from '../errors/policyd-error.js';

/**
 * The bytes a policy receives as its Extism input, built from a material described without the
 * protobuf enum (materials/evaluable.ts describes it): pool workers build it, and they do not load
 * the generated protobuf module (test/unit/worker-footprint.test.ts).
 */

/** A material, and what its kind means for the input: worked out where the kinds are known. */
export interface EvaluableMaterial {
  content: Uint8Array;
  /** The material's name ("material" when it has none). */
  name: string;
  /** Chainloop's MaterialType name, e.g. SBOM_CYCLONEDX_JSON. */
  kindName: string;
  annotations?: Record<string, string>;
  /**
   * How the content becomes the input: `prepared` passed through untouched; `json` parsed and spliced;
   * `attestation` unwrapped from its envelope first; the contentless kinds only chainloop_metadata —
   * `string` (STRING) with the content inline, `image` (CONTAINER_IMAGE) with the digest its reference
   * names, `reference` (any other) with the content's digest.
   */
  form: 'prepared' | 'reference' | 'string' | 'image' | 'attestation' | 'json';
}

function utf8(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}

const encoder = new TextEncoder();

/**
 * One fresh (never pooled, so transferable) buffer holding the parts in order; strings are encoded
 * straight into it (encoding each into a buffer of its own first doubled the cost).
 */
function concat(parts: (string | Uint8Array)[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += typeof p === 'string' ? Buffer.byteLength(p) : p.byteLength;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    if (typeof p === 'string') {
      at += encoder.encodeInto(p, out.subarray(at)).written;
    } else {
      out.set(p, at);
      at += p.byteLength;
    }
  }
  return out;
}

const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

function firstNonSpace(bytes: Uint8Array, from: number): number {
  let i = from;
  while (i < bytes.byteLength && WHITESPACE.has(bytes[i]!)) i++;
  return i;
}

/** A material the daemon cannot make an input of: Chainloop's words, then what to do. */
export function invalidMaterial(kindName: string, why: string): PolicydError {
  return new PolicydError('INVALID_MATERIAL', `failed to parse input: ${kindName} material ${why}`);
}

function parseJson(material: EvaluableMaterial, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw invalidMaterial(
      material.kindName,
      `is not valid JSON (${errorMessage(err)}); send JSON, or set material.prepared to pass bytes through untouched`,
    );
  }
}

/** The in-toto statement inside a DSSE envelope or a Sigstore bundle; a bare statement as is. */
function unwrapAttestation(material: EvaluableMaterial, text: string): string {
  const doc = parseJson(material, text) as Record<string, unknown> | null;
  const envelope = (doc?.dsseEnvelope ?? doc) as Record<string, unknown> | null;
  if (envelope && typeof envelope.payload === 'string' && typeof envelope.payloadType === 'string') {
    return Buffer.from(envelope.payload, 'base64').toString('utf8');
  }
  return text;
}

/** The image digest of a reference such as `ghcr.io/org/app@sha256:<hex>`. */
function imageDigest(ref: string): string | undefined {
  return /@sha256:([0-9a-f]{64})$/.exec(ref.trim())?.[1];
}

/**
 * Chainloop's `chainloop_metadata`: an in-toto ResourceDescriptor with the material's name, sha256
 * digest, inline content for STRING materials, and annotations (built-in keys win over custom ones).
 */
function metadataJson(material: EvaluableMaterial): string {
  const { name } = material;
  const sha256 = (material.form === 'image' ? imageDigest(utf8(material.content)) : undefined) ?? hash('sha256', material.content, 'hex');
  const annotations: Record<string, string> = {
    ...material.annotations,
    'chainloop.material.name': name,
    'chainloop.material.type': material.kindName,
  };
  const sorted = Object.fromEntries(Object.entries(annotations).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const descriptor: Record<string, unknown> = { name, digest: { sha256 } };
  if (material.form === 'string') descriptor.content = Buffer.from(material.content).toString('base64');
  descriptor.annotations = sorted;
  return JSON.stringify(descriptor);
}

/**
 * The exact bytes a policy receives as its Extism input: the material JSON (attestations unwrapped,
 * top-level arrays wrapped as {"elements":[…]}) with chainloop_metadata added. The material's own
 * bytes are spliced in rather than parsed and re-serialised, so large numbers and key order survive
 * and big SBOMs are not rebuilt; they are still parsed once, because Chainloop refuses invalid JSON.
 */
export function buildEvaluableInput(material: EvaluableMaterial): Uint8Array {
  if (material.form === 'prepared') return material.content;
  const meta = metadataJson(material);
  if (material.form === 'reference' || material.form === 'string' || material.form === 'image' || material.content.byteLength === 0) {
    return concat([`{"chainloop_metadata":${meta}}`]);
  }
  let bytes = material.content;
  let text = utf8(bytes);
  if (material.form === 'attestation') {
    const statement = unwrapAttestation(material, text);
    if (statement !== text) {
      text = statement;
      bytes = encoder.encode(statement);
    }
  }
  const doc = parseJson(material, text);
  if (Array.isArray(doc)) {
    return concat([`{"chainloop_metadata":${meta},"elements":`, bytes, '}']);
  }
  if (doc === null || typeof doc !== 'object') {
    throw invalidMaterial(material.kindName, 'must be a JSON object or array');
  }
  if (Object.hasOwn(doc, 'chainloop_metadata')) {
    (doc as Record<string, unknown>).chainloop_metadata = JSON.parse(meta);
    try {
      return concat([JSON.stringify(doc)]);
    } catch (err) {
      // JSON.stringify recurses: a document nested deeper than the stack allows cannot be rebuilt.
      if (err instanceof RangeError)
        throw invalidMaterial(material.kindName, 'is nested too deeply to be re-encoded with its own chainloop_metadata replaced');
      throw err;
    }
  }
  const afterBrace = firstNonSpace(bytes, 0) + 1;
  const separator = bytes[firstNonSpace(bytes, afterBrace)] === 0x7d ? '' : ',';
  return concat([`{"chainloop_metadata":${meta}${separator}`, bytes.subarray(afterBrace)]);
}
