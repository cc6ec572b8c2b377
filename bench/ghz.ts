import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runGenerator } from './processes.js';
import { percentile } from './stats.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * ghz (Go; pinned in bench/tools/ghz, built into build/bin by `make ghz`): the open-loop generator of
 * the overload figure. h2load keeps a fixed number of streams in flight — a closed loop, which slows
 * down with the server — and sees every gRPC status as HTTP 200; `ghz --async --rps` sends at a fixed
 * rate whatever the answers and reports each request's status and latency.
 */
export interface OpenLoopOptions {
  /** host:port, or unix:///path. */
  target: string;
  /** The serialized EvaluateRequest (no gRPC frame header). */
  message: string;
  rate: number;
  durationS: number;
  /** Where ghz writes its JSON report. */
  report: string;
}

export interface StatusFigures {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export interface OpenLoopResult {
  sent: number;
  seconds: number;
  /** By gRPC status name (OK, ResourceExhausted, …): how many, and their latencies in ms. */
  byStatus: Record<string, StatusFigures>;
  /** ghz's CPU time over the run's wall time (1 = one full core). */
  generatorCpuShare: number;
}

interface GhzReport {
  count: number;
  total: number;
  details: { latency: number; status: string }[];
}

export function openLoop(o: OpenLoopOptions): OpenLoopResult {
  const args = [
    '--insecure',
    '--proto',
    `${ROOT}proto/policyengine/v1/engine.proto`,
    '--import-paths',
    `${ROOT}proto`,
    '--call',
    'policyengine.v1.PolicyEngineService.Evaluate',
    '-B',
    o.message,
    '--async',
    '--rps',
    String(Math.round(o.rate)),
    '-z',
    `${o.durationS}s`,
    // Requests still in flight when the time is up are waited for: one that never ends is a finding.
    '--duration-stop',
    'wait',
    '--timeout',
    '20s',
    '--connections',
    '1',
    '-c',
    '64',
    '-O',
    'json',
    '-o',
    o.report,
    o.target,
  ];
  const { cpuSeconds: cpu } = runGenerator('ghz', args);
  const report = JSON.parse(readFileSync(o.report, 'utf8')) as GhzReport;
  const latencies = new Map<string, number[]>();
  for (const d of report.details) {
    const list = latencies.get(d.status);
    if (list) list.push(d.latency / 1e6);
    else latencies.set(d.status, [d.latency / 1e6]);
  }
  const byStatus: Record<string, StatusFigures> = {};
  for (const [name, list] of latencies) {
    list.sort((a, b) => a - b);
    byStatus[name] = { count: list.length, p50: percentile(list, 0.5), p99: percentile(list, 0.99), max: list.at(-1)! };
  }
  const seconds = report.total / 1e9;
  return { sent: report.count, seconds, byStatus, generatorCpuShare: cpu / seconds };
}
