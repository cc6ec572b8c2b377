import { MaterialKind } from '../gen/policyengine/v1/engine_pb.js';
import { buildEvaluableInput, invalidMaterial, type EvaluableMaterial } from './evaluable-input.js';
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

/**
 * A material as the input builder takes it (materials/evaluable-input.ts), or why no input can be
 * made of it (a kind Chainloop projects from XML, ZIP or text, which this daemon does not).
 */
export function evaluableMaterial(material: MaterialInput): EvaluableMaterial {
  const kind = kindName(material.kind);
  if (!material.prepared && needsProjection(material.kind)) {
    throw invalidMaterial(
      kind,
      'needs a projection to JSON that this daemon does not perform; convert it to JSON and send it with material.prepared set',
    );
  }
  return {
    content: material.content,
    name: material.name || 'material',
    kindName: kind,
    annotations: material.annotations,
    form: formOf(material),
  };
}

/** How the material's kind makes its content into the input (EvaluableMaterial['form'] lists them). */
function formOf(material: MaterialInput): EvaluableMaterial['form'] {
  if (material.prepared) return 'prepared';
  if (material.kind === MaterialKind.STRING) return 'string';
  if (material.kind === MaterialKind.CONTAINER_IMAGE) return 'image';
  if (isContentless(material.kind)) return 'reference';
  return material.kind === MaterialKind.ATTESTATION ? 'attestation' : 'json';
}

/** The exact bytes a policy receives as its Extism input (materials/evaluable-input.ts says how). */
export function evaluableInput(material: MaterialInput): Uint8Array {
  return buildEvaluableInput(evaluableMaterial(material));
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
