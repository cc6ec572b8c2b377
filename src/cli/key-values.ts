/** Collects repeatable `k=v` flags (and `k=v,k2=v2` lists) into a record; a later key wins. */
export function keyValue(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const at = value.indexOf('=');
  if (at <= 0) throw new Error(`expected key=value, got "${value}"`);
  return { ...previous, [value.slice(0, at).trim()]: value.slice(at + 1) };
}

export function keyValueList(value: string, previous: Record<string, string> = {}): Record<string, string> {
  return value.split(',').reduce((acc, pair) => keyValue(pair, acc), previous);
}

export function commaList(value: string, previous: string[] = []): string[] {
  return [
    ...previous,
    ...value
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
  ];
}
