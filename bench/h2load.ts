import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { create, toBinary } from '@bufbuild/protobuf';
import { EvaluateRequestSchema } from '../src/gen/policyengine/v1/engine_pb.js';
import { runGenerator } from './processes.js';
import { percentile } from './stats.js';

/**
 * h2load (C, Debian's nghttp2-client) as the native gRPC load generator: it sends one fixed, already
 * encoded Evaluate request as fast as the target answers, so the generator's own cost stays small and
 * is reported (its CPU seconds over the run's wall time, read with the shell's `times`). Latencies come
 * from its per-request log. h2load judges HTTP/2 only: every gRPC status rides on a 200, so callers
 * count outcomes on the server side (the daemon's metrics) where it matters.
 */
export const EVALUATE_PATH = '/policyengine.v1.PolicyEngineService/Evaluate';

/** An Evaluate request as one gRPC message frame: flag 0, 4-byte big-endian length, protobuf. */
export function evaluateFrame(file: string, policy: string, content: Uint8Array, kind: number): string {
  const request = toBinary(EvaluateRequestSchema, create(EvaluateRequestSchema, { policy, material: { content, kind } }));
  const frame = Buffer.alloc(5 + request.byteLength);
  frame.writeUInt32BE(request.byteLength, 1);
  frame.set(request, 5);
  writeFileSync(file, frame);
  return file;
}

export interface H2loadResult {
  requests: number;
  seconds: number;
  throughput: number;
  p50: number;
  p99: number;
  /** h2load's CPU time over the run's wall time (1 = one full core). */
  generatorCpuShare: number;
}

export interface H2loadOptions {
  /** host:port, or unix:///path. */
  target: string;
  body: string;
  streams: number;
  durationS: number;
  warmUpS: number;
  logFile: string;
}

/** h2load's "finished in 1.23s" (or "987.65ms" when under a second), in seconds. */
export function durationSeconds(out: string): number {
  const [, value, unit] = /finished in ([\d.]+)(us|ms|s)\b/.exec(out) ?? [];
  return Number(value) / ({ us: 1e6, ms: 1e3, s: 1 }[unit as 'us' | 'ms' | 's'] ?? NaN);
}

export function h2load(o: H2loadOptions): H2loadResult {
  const unix = o.target.startsWith('unix://') ? o.target.slice('unix://'.length) : undefined;
  const uri = unix ? `http://localhost${EVALUATE_PATH}` : `http://${o.target}${EVALUATE_PATH}`;
  const args = [
    '-c',
    '1',
    '-m',
    String(o.streams),
    '-D',
    String(o.durationS),
    '--warm-up-time',
    String(o.warmUpS),
    '-d',
    o.body,
    '-H',
    'content-type: application/grpc',
    '-H',
    'te: trailers',
    `--log-file=${o.logFile}`,
    ...(unix ? [`--base-uri=unix:${unix}`] : []),
    uri,
  ];
  rmSync(o.logFile, { force: true }); // h2load appends to an existing log
  const { out, cpuSeconds: cpu } = runGenerator('h2load', args);
  const seconds = durationSeconds(out);
  const requests = Number(/requests: \d+ total, \d+ started, (\d+) done/.exec(out)?.[1]);
  // Log lines: start (µs), HTTP status, elapsed (µs).
  const latencies = readFileSync(o.logFile, 'utf8')
    .trim()
    .split('\n')
    .map((line) => Number(line.split('\t')[2]) / 1000)
    .sort((a, b) => a - b);
  return {
    requests,
    seconds,
    throughput: requests / seconds,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    generatorCpuShare: cpu / (seconds + o.warmUpS),
  };
}
