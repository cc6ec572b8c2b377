import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { ServiceError } from '@grpc/grpc-js';
import { PolicyEngineClient } from '../clients/typescript/src/index.js';
import { Latencies } from './stats.js';

/**
 * The load generator: a separate process that drives Evaluate on a target (the daemon, or the no-op
 * server for the transport ceiling) and prints one JSON line of results, including its own CPU time so
 * its overhead is visible. Closed loop (`concurrency` requests always outstanding) or open loop
 * (`rate` requests per second whatever the answers, for overload).
 */
const { values: o } = parseArgs({
  options: {
    target: { type: 'string' },
    policy: { type: 'string', default: 'bench' },
    material: { type: 'string' },
    kind: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '1' },
    'duration-ms': { type: 'string', default: '3000' },
    'warmup-ms': { type: 'string', default: '500' },
    rate: { type: 'string' },
    connections: { type: 'string', default: '1' },
  },
});

const material = { content: readFileSync(o.material!), kind: Number(o.kind) };
const clients = Array.from({ length: Number(o.connections) }, () => new PolicyEngineClient(o.target!));
const request = { policy: o.policy!, material };

interface Tally {
  latencies: Latencies;
  ok: number;
  errors: Record<string, number>;
}

async function one(tally: Tally | undefined, i: number): Promise<void> {
  const started = performance.now();
  try {
    await clients[i % clients.length]!.evaluate(request as never);
    if (tally) {
      tally.latencies.record(performance.now() - started);
      tally.ok++;
    }
  } catch (err) {
    if (tally) {
      const code = String((err as ServiceError).code);
      tally.errors[code] = (tally.errors[code] ?? 0) + 1;
    }
  }
}

async function closedLoop(tally: Tally | undefined, ms: number): Promise<void> {
  const end = performance.now() + ms;
  let n = 0;
  await Promise.all(
    Array.from({ length: Number(o.concurrency) }, async () => {
      while (performance.now() < end) await one(tally, n++);
    }),
  );
}

async function openLoop(tally: Tally, ms: number, rate: number): Promise<void> {
  const inFlight: Promise<void>[] = [];
  const start = performance.now();
  let sent = 0;
  while (performance.now() - start < ms) {
    const due = Math.floor(((performance.now() - start) / 1000) * rate);
    for (; sent < due; sent++) inFlight.push(one(tally, sent));
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all(inFlight);
}

const warmup = Number(o['warmup-ms']);
if (warmup > 0) await closedLoop(undefined, warmup);
const tally: Tally = { latencies: new Latencies(), ok: 0, errors: {} };
const cpuBefore = process.cpuUsage();
const t0 = performance.now();
if (o.rate) await openLoop(tally, Number(o['duration-ms']), Number(o.rate));
else await closedLoop(tally, Number(o['duration-ms']));
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpuBefore);
for (const c of clients) c.close();
process.stdout.write(
  `${JSON.stringify({
    ok: tally.ok,
    errors: tally.errors,
    seconds,
    throughput: tally.ok / seconds,
    ...tally.latencies.summary(),
    generatorCpuShare: (cpu.user + cpu.system) / 1e6 / seconds,
  })}\n`,
);
process.exit(0);
