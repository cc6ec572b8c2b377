import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { MaterialKind } from '../gen/policyengine/v1/engine_pb.js';
import { PolicydError, errorMessage } from '../errors/policyd-error.js';
import { kindFromName } from '../materials/kinds.js';
import { describeIssues } from '../errors/issues.js';

/**
 * Chainloop's `Policy` document (workflowcontract.v1 crafting_schema.proto), parsed the way
 * protojson + protovalidate do: snake_case or lowerCamel keys, unknown keys rejected, enum values by
 * name or number.
 */

/** protojson accepts both spellings of a field; the schema below is written in lowerCamel. */
function camelKeys(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()), v]));
}

function message<T extends z.ZodRawShape>(shape: T) {
  return z.preprocess(camelKeys, z.strictObject(shape));
}

const materialKind = z.union([z.string(), z.number().int()]).transform((value, ctx) => {
  const kind = typeof value === 'number' ? (MaterialKind[value] ? (value as MaterialKind) : undefined) : kindFromName(value);
  if (kind === undefined) {
    ctx.addIssue({ code: 'custom', message: `unknown material kind ${JSON.stringify(value)}` });
    return z.NEVER;
  }
  return kind;
});

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const INPUT_NAME = /^[a-zA-Z][a-zA-Z0-9_]*$/;

const metadataSchema = message({
  name: z.string().regex(NAME, 'must be lowercase letters, digits and dashes (e.g. "sbom-licenses")'),
  description: z.string().optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  organization: z.string().optional(),
  findingType: z.enum(['FINDING_TYPE_UNSPECIFIED', 'VULNERABILITY', 'SAST', 'LICENSE_VIOLATION']).optional(),
});

const scriptSourceFields = {
  path: z.string().min(1).optional(),
  embedded: z.string().min(1).optional(),
  ref: z.string().min(1).optional(),
};

const specV2Schema = message({
  ...scriptSourceFields,
  kind: materialKind.optional(),
  attestationPhases: z.array(z.union([z.string(), z.number()])).optional(),
}).refine((s) => [s.path, s.embedded, s.ref].filter((x) => x !== undefined).length === 1, {
  message: 'each entry needs exactly one of `ref`, `path` or `embedded`',
});

const inputSchema = message({
  name: z.string().regex(INPUT_NAME, 'must start with a letter and hold only letters, digits and underscores'),
  description: z.string().optional(),
  required: z.boolean().optional(),
  default: z.string().optional(),
}).refine((i) => !(i.required && i.default), { message: 'an input cannot be both required and have a default' });

const specSchema = message({
  path: z.string().min(1).optional(),
  embedded: z.string().min(1).optional(),
  type: materialKind.optional(),
  policies: z.array(specV2Schema).optional(),
  inputs: z.array(inputSchema).optional(),
  autoMatch: z.unknown().optional(),
}).refine((s) => s.path !== undefined || s.embedded !== undefined || (s.policies?.length ?? 0) > 0, {
  message: 'spec needs `policies` (or the legacy `path`/`embedded`)',
});

const policySchema = message({
  apiVersion: z.enum(['chainloop.dev/v1', 'workflowcontract.chainloop.dev/v1']),
  kind: z.literal('Policy'),
  metadata: metadataSchema,
  spec: specSchema,
});

export type PolicyDocument = z.infer<typeof policySchema>;
export type PolicyInputSpec = NonNullable<PolicyDocument['spec']['inputs']>[number];

/** Where a script's bytes come from, as written in the document. */
export interface ScriptSource {
  kind: MaterialKind;
  embedded?: string;
  /** `ref` or the deprecated `path`. */
  location?: string;
  /** JSON path of the entry, for error messages. */
  field: string;
}

/** Parses YAML or JSON bytes (JSON is YAML) into a validated policy document. */
export function parsePolicyDocument(bytes: Uint8Array, source = 'policy document'): PolicyDocument {
  let raw: unknown;
  try {
    raw = parseYaml(Buffer.from(bytes).toString('utf8'), { uniqueKeys: true });
  } catch (err) {
    // The parser's message ends with an excerpt of the text; refs read from disk or the network must
    // not echo their content, so only the reason and position are kept.
    throw new PolicydError('INVALID_DOCUMENT', `${source} is neither YAML nor JSON: ${errorMessage(err).split(':\n')[0]}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new PolicydError(
      'INVALID_DOCUMENT',
      `${source} must be a Chainloop Policy (apiVersion: chainloop.dev/v1, kind: Policy, metadata, spec)`,
    );
  }
  const parsed = policySchema.safeParse(raw);
  if (!parsed.success) {
    throw new PolicydError('INVALID_DOCUMENT', `${source} is not a valid Chainloop Policy: ${describeIssues(parsed.error, '(document)')}`);
  }
  return parsed.data;
}

/** Every script of the document, new-style `spec.policies` or the legacy single script. */
export function scriptSources(doc: PolicyDocument): ScriptSource[] {
  const { spec } = doc;
  if (spec.policies?.length) {
    return spec.policies.map((p, i) => ({
      kind: p.kind ?? MaterialKind.UNSPECIFIED,
      embedded: p.embedded,
      location: p.ref ?? p.path,
      field: `spec.policies.${i}`,
    }));
  }
  return [{ kind: spec.type ?? MaterialKind.UNSPECIFIED, embedded: spec.embedded, location: spec.path, field: 'spec' }];
}
