/**
 * JSON as Go's json.Encoder writes it with SetIndent("", "   "): JSON.stringify's layout, with <, >, &
 * and U+2028/U+2029 escaped, and a trailing newline — so `eval` output byte-matches `chainloop policy
 * devel eval`.
 */
export function goJson(value: unknown, indent = 3): string {
  return `${JSON.stringify(value, null, indent).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n`;
}
