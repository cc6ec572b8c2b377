import type { ReferrerItem } from '../gen/controlplane/v1/referrer_pb.js';

type GoValue = string | boolean | GoValue[] | { [key: string]: GoValue };

function sortedMap(map: Record<string, string>): Record<string, string> | undefined {
  const keys = Object.keys(map).sort();
  return keys.length ? Object.fromEntries(keys.map((k) => [k, map[k]!])) : undefined;
}

/**
 * A ReferrerItem as Go's encoding/json writes the generated struct, which is what Chainloop hands
 * guests: proto field names, declaration order, `omitempty` (no false, empty or nil fields), map keys
 * sorted, and created_at as {"seconds","nanos"} rather than RFC 3339.
 */
function goShape(item: ReferrerItem): Record<string, GoValue | undefined> {
  const seconds = item.createdAt?.seconds ?? 0n;
  const nanos = item.createdAt?.nanos ?? 0;
  const createdAt: Record<string, GoValue> | undefined = item.createdAt ? {} : undefined;
  if (createdAt && seconds !== 0n) createdAt.seconds = String(seconds);
  if (createdAt && nanos !== 0) createdAt.nanos = String(nanos);
  return {
    digest: item.digest || undefined,
    kind: item.kind || undefined,
    downloadable: item.downloadable || undefined,
    public: item.public || undefined,
    references: item.references.length ? item.references.map((r) => goShape(r) as GoValue) : undefined,
    created_at: createdAt,
    metadata: sortedMap(item.metadata),
    annotations: sortedMap(item.annotations),
  };
}

export function referrerItemJson(item: ReferrerItem | undefined): string {
  if (!item) return 'null';
  // Go writes int64 as a bare number; the placeholders keep BigInt precision through JSON.stringify.
  return JSON.stringify(goShape(item)).replace(/"(seconds|nanos)":"(-?\d+)"/g, '"$1":$2');
}
