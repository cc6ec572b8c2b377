import hdr from 'hdr-histogram-js';

/** Latency percentiles in milliseconds, recorded in microseconds by an HDR histogram. */
export class Latencies {
  readonly #h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });

  record(ms: number): void {
    this.#h.recordValue(Math.max(1, Math.round(ms * 1000)));
  }

  get count(): number {
    return this.#h.totalCount;
  }

  percentile(p: number): number {
    return this.#h.getValueAtPercentile(p) / 1000;
  }

  summary(): { p50: number; p90: number; p99: number; max: number } {
    return { p50: this.percentile(50), p90: this.percentile(90), p99: this.percentile(99), max: this.#h.maxValue / 1000 };
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** The value at quantile q (0–1) of an ascending array. */
export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
