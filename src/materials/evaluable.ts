import { createHash } from 'node:crypto';
import { MaterialKind } from '../gen/policyengine/v1/engine_pb.js';
import { PolicydError, errorMessage } from '../errors/policyd-error.js';
import { isContentless, kindName, needsProjection } from './kinds.js';

export interface MaterialInput {
  content: Uint8Array;
  kind: MaterialKind;
  /** Defaults to "material". */
  name?: string;
  annotations?: Record<string, string>;
  /** Pass `content` through untouched: no chainloop_metadata, no array wrapping. */
  prepared?: boolean;
}

function utf8(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}

const encoder = new TextEncoder();

/** One fresh (never pooled, so transferable) buffer holding the parts in order. */
function concat(parts: (string | Uint8Array)[]): Uint8Array {
  const bytes = parts.map((p) => (typeof p === 'string' ? encoder.encode(p) : p));
  const out = new Uint8Array(bytes.reduce((n, b) => n + b.byteLength, 0));
  let at = 0;
  for (const b of bytes) {
    out.set(b, at);
    at += b.byteLength;
  }
  return out;
}

const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

function firstNonSpace(bytes: Uint8Array, from: number): number {
  let i = from;
  while (i < bytes.byteLength && WHITESPACE.has(bytes[i]!)) i++;
  return i;
}

function invalid(kind: MaterialKind, why: string): PolicydError {
  return new PolicydError('INVALID_MATERIAL', `failed to parse input: ${kindName(kind)} material ${why}`);
}

function parseJson(kind: MaterialKind, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw invalid(kind, `is not valid JSON (${errorMessage(err)}); send JSON, or set material.prepared to pass bytes through untouched`);
  }
}

/** The in-toto statement inside a DSSE envelope or a Sigstore bundle; a bare statement as is. */
function unwrapAttestation(text: string): string {
  const doc = parseJson(MaterialKind.ATTESTATION, text) as Record<string, unknown> | null;
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
function metadataJson(material: MaterialInput, name: string): string {
  const text = utf8(material.content);
  const sha256 =
    (material.kind === MaterialKind.CONTAINER_IMAGE ? imageDigest(text) : undefined) ??
    createHash('sha256').update(material.content).digest('hex');
  const annotations: Record<string, string> = {
    ...material.annotations,
    'chainloop.material.name': name,
    'chainloop.material.type': kindName(material.kind),
  };
  const sorted = Object.fromEntries(Object.entries(annotations).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const descriptor: Record<string, unknown> = { name, digest: { sha256 } };
  if (material.kind === MaterialKind.STRING) descriptor.content = Buffer.from(material.content).toString('base64');
  descriptor.annotations = sorted;
  return JSON.stringify(descriptor);
}

/**
 * The exact bytes a policy receives as its Extism input: the material JSON (attestations unwrapped,
 * top-level arrays wrapped as {"elements":[…]}) with chainloop_metadata added. The material's own
 * bytes are spliced in rather than parsed and re-serialised, so large numbers and key order survive
 * and big SBOMs are not rebuilt; they are still parsed once, because Chainloop refuses invalid JSON.
 */
export function evaluableInput(material: MaterialInput): Uint8Array {
  if (material.prepared) return material.content;
  if (needsProjection(material.kind)) {
    throw invalid(
      material.kind,
      'needs a projection to JSON that this daemon does not perform; convert it to JSON and send it with material.prepared set',
    );
  }
  const name = material.name || 'material';
  const meta = metadataJson(material, name);
  if (isContentless(material.kind) || material.content.byteLength === 0) {
    return concat([`{"chainloop_metadata":${meta}}`]);
  }
  let bytes = material.content;
  let text = utf8(bytes);
  if (material.kind === MaterialKind.ATTESTATION) {
    const statement = unwrapAttestation(text);
    if (statement !== text) {
      text = statement;
      bytes = encoder.encode(statement);
    }
  }
  const doc = parseJson(material.kind, text);
  if (Array.isArray(doc)) {
    return concat([`{"chainloop_metadata":${meta},"elements":`, bytes, '}']);
  }
  if (doc === null || typeof doc !== 'object') {
    throw invalid(material.kind, 'must be a JSON object or array');
  }
  if (Object.hasOwn(doc, 'chainloop_metadata')) {
    (doc as Record<string, unknown>).chainloop_metadata = JSON.parse(meta);
    try {
      return concat([JSON.stringify(doc)]);
    } catch (err) {
      // JSON.stringify recurses: a document nested deeper than the stack allows cannot be rebuilt.
      if (err instanceof RangeError)
        throw invalid(material.kind, 'is nested too deeply to be re-encoded with its own chainloop_metadata replaced');
      throw err;
    }
  }
  const afterBrace = firstNonSpace(bytes, 0) + 1;
  const separator = bytes[firstNonSpace(bytes, afterBrace)] === 0x7d ? '' : ',';
  return concat([`{"chainloop_metadata":${meta}${separator}`, bytes.subarray(afterBrace)]);
}

/**
 * One material that several evaluations read (EvaluateBatch): its evaluable input is built by the first
 * evaluation that needs it — or its error found — and every other evaluation gets the same answer.
 * The bytes are shared, so no evaluation may hand them over (transfer them) to a worker.
 */
export class SharedEvaluableInput {
  #built?: { input: Uint8Array } | { error: unknown };

  constructor(readonly material: MaterialInput) {}

  get input(): Uint8Array {
    if (!this.#built) {
      try {
        this.#built = { input: evaluableInput(this.material) };
      } catch (error) {
        this.#built = { error };
      }
    }
    if ('error' in this.#built) throw this.#built.error;
    return this.#built.input;
  }
}
