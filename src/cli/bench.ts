import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename } from 'node:path';
import { detectKind } from '../materials/detect.js';
import { kindFromName } from '../materials/kinds.js';
import { withLocalPolicy } from './local-policy.js';
import type { RegistryFlags } from './push.js';

export interface BenchOptions extends RegistryFlags {
  policy: string;
  material: string;
  kind?: string;
  input: Record<string, string>;
  /** Seconds of measurement, after a warm-up of a tenth of it. */
  duration: number;
  /** Evaluations in flight at once (default: one per worker). */
  concurrency?: number;
  threads?: number;
  format: 'text' | 'json';
}

export interface BenchReport {
  policy: string;
  threads: number;
  concurrency: number;
  evaluations: number;
  failures: number;
  evaluationsPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

/**
 * `wasm-policyd bench`: evaluations per second and latency of one policy on one material, in this
 * process, as the daemon runs it (worker pool, an instance in its new state per evaluation) — like
 * `opa bench` and `kwctl bench`. No gRPC: the daemon's transport cost is measured in bench/.
 */
export async function runBench(opts: BenchOptions): Promise<BenchReport> {
  const content = await readFile(opts.material);
  const kind = opts.kind === undefined ? detectKind(content) : kindFromName(opts.kind);
  if (kind === undefined) throw new Error(`cannot tell the kind of ${opts.material}: give --kind`);
  const threads = opts.threads ?? Math.max(1, availableParallelism() - 1);
  const concurrency = opts.concurrency ?? threads;
  return withLocalPolicy(
    opts.policy,
    async (engine, policy) => {
      const evaluate = () =>
        engine.evaluate({ policy: policy.digest, material: { content, kind, name: basename(opts.material) }, args: opts.input });
      await evaluate(); // a failing policy fails here, with its own error
      const latencies: number[] = [];
      let failures = 0;
      const loop = async (until: number, record: boolean) => {
        while (performance.now() < until) {
          const started = performance.now();
          try {
            await evaluate();
            if (record) latencies.push(performance.now() - started);
          } catch {
            if (record) failures++;
          }
        }
      };
      const run = (seconds: number, record: boolean) =>
        Promise.all(Array.from({ length: concurrency }, () => loop(performance.now() + seconds * 1000, record)));
      await run(opts.duration / 10, false);
      const started = performance.now();
      await run(opts.duration, true);
      const elapsed = (performance.now() - started) / 1000;
      latencies.sort((a, b) => a - b);
      return {
        policy: policy.name,
        threads,
        concurrency,
        evaluations: latencies.length,
        failures,
        evaluationsPerSecond: Math.round(latencies.length / elapsed),
        latencyMs: {
          p50: round(percentile(latencies, 50)),
          p90: round(percentile(latencies, 90)),
          p99: round(percentile(latencies, 99)),
          max: round(latencies.at(-1) ?? 0),
        },
      };
    },
    { threads },
    opts,
  );
}

export function renderBench(report: BenchReport, format: 'text' | 'json'): string {
  if (format === 'json') return `${JSON.stringify(report, null, 2)}\n`;
  const rows: [string, string][] = [
    ['policy', report.policy],
    ['threads / in flight', `${report.threads} / ${report.concurrency}`],
    ['evaluations', String(report.evaluations)],
    ['failures', String(report.failures)],
    ['evaluations/s', String(report.evaluationsPerSecond)],
    ['latency p50 (ms)', String(report.latencyMs.p50)],
    ['latency p90 (ms)', String(report.latencyMs.p90)],
    ['latency p99 (ms)', String(report.latencyMs.p99)],
    ['latency max (ms)', String(report.latencyMs.max)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return `${rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n`;
}
