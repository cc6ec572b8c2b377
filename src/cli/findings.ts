/**
 * Chainloop's `findings` in `policy devel eval` output: each structured finding validated into the
 * proto of the policy's metadata.finding_type, printed as protojson with proto names (fields in proto
 * order, empty ones omitted) under its oneof name, plus `suppress` when true.
 */
const FINDING_FIELDS: Record<string, { wrapper: string; fields: string[] }> = {
  VULNERABILITY: {
    wrapper: 'vulnerability',
    fields: [
      'message',
      'external_id',
      'package_purl',
      'severity',
      'cvss_v3_score',
      'cwes',
      'recommendation',
      'description',
      'fixed_version',
      'assessment',
    ],
  },
  SAST: {
    wrapper: 'sast',
    fields: ['message', 'rule_id', 'severity', 'location', 'line_number', 'code_snippet', 'recommendation', 'severity_score', 'assessment'],
  },
  LICENSE_VIOLATION: {
    wrapper: 'license_violation',
    fields: [
      'message',
      'component_name',
      'package_purl',
      'license_id',
      'license_name',
      'component_version',
      'recommendation',
      'assessment',
    ],
  },
};

function isEmpty(value: unknown): boolean {
  return (
    value === undefined || value === null || value === '' || value === 0 || value === false || (Array.isArray(value) && value.length === 0)
  );
}

export function chainloopFinding(findingType: string, raw: Record<string, unknown>): Record<string, unknown> | undefined {
  const shape = FINDING_FIELDS[findingType];
  if (!shape) return undefined;
  const inner: Record<string, unknown> = {};
  for (const field of shape.fields) if (!isEmpty(raw[field])) inner[field] = raw[field];
  const out: Record<string, unknown> = { [shape.wrapper]: inner };
  if (raw.suppress === true) out.suppress = true;
  return out;
}
