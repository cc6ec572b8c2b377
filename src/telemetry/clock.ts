/** Epoch milliseconds with sub-millisecond precision, comparable across threads (each has its own timeOrigin). */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}
