import { MaterialKind } from '../gen/policyengine/v1/engine_pb.js';

/**
 * Material kinds by Chainloop's MaterialType name ("SBOM_CYCLONEDX_JSON"), which is what policy
 * documents and the CLI use; the protobuf enum carries the same numbers with a MATERIAL_KIND_ prefix.
 */
export function kindFromName(name: string): MaterialKind | undefined {
  const bare = name
    .trim()
    .toUpperCase()
    .replace(/^MATERIAL_KIND_/, '');
  if (bare === '' || bare === 'MATERIAL_TYPE_UNSPECIFIED') return MaterialKind.UNSPECIFIED;
  const value = (MaterialKind as unknown as Record<string, number | undefined>)[bare];
  return typeof value === 'number' ? (value as MaterialKind) : undefined;
}

export function kindName(kind: MaterialKind): string {
  return kind === MaterialKind.UNSPECIFIED ? 'MATERIAL_TYPE_UNSPECIFIED' : (MaterialKind[kind] ?? `UNKNOWN_${kind}`);
}

export function isKnownKind(kind: number): kind is MaterialKind {
  return MaterialKind[kind] !== undefined;
}

export function allKindNames(): string[] {
  return Object.keys(MaterialKind).filter((k) => Number.isNaN(Number(k)) && k !== 'UNSPECIFIED');
}

/** Kinds whose content Chainloop projects from XML, ZIP or text formats before policies see it. */
const NON_JSON_KINDS = new Set<MaterialKind>([
  MaterialKind.JUNIT_XML,
  MaterialKind.JACOCO_XML,
  MaterialKind.COBERTURA_XML,
  MaterialKind.ZAP_DAST_ZIP,
  MaterialKind.HELM_CHART,
  MaterialKind.RADAMSA_REPORT,
  MaterialKind.RADAMSA_CRASHES,
  MaterialKind.SYSINTERNALS_SIGCHECK,
  MaterialKind.SYSINTERNALS_ACCESSCHK,
  MaterialKind.CERTCC_DRANZER,
]);

/** Kinds whose material is not a document: the policy sees `{}` plus chainloop_metadata. */
const CONTENTLESS_KINDS = new Set<MaterialKind>([MaterialKind.STRING, MaterialKind.CONTAINER_IMAGE, MaterialKind.ARTIFACT]);

export function needsProjection(kind: MaterialKind): boolean {
  return NON_JSON_KINDS.has(kind);
}

export function isContentless(kind: MaterialKind): boolean {
  return CONTENTLESS_KINDS.has(kind);
}
