import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { PolicyEngineClient } from '../clients/typescript/src/index.js';
import { bigModule, cyclonedx, withCustomSection } from './fixtures.js';
import { chainloopBaseline, rawInProcess, type InProcessResult } from './in-process.js';
import { runLoad, startDaemon, startNoopServer, type Daemon, type LoadResult } from './processes.js';
import { median } from './stats.js';

/**
 * `make bench`: every measurement of bench/README in one run, written to bench/RESULTS.md and
 * bench/results.json. Ratios come from numbers measured in this same run; repeated runs give medians.
 * `--smoke` runs everything for a fraction of a second (the test suite does, to keep it from rotting).
 */
const SMOKE = process.argv.includes('--smoke');
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OUT = process.argv.includes('--out') ? process.argv[process.argv.indexOf('--out') + 1]! : `${ROOT}bench`;
const D = SMOKE ? 150 : 4000;
const WARM = SMOKE ? 50 : 1000;
const REPEATS = SMOKE ? 1 : 3;
const SOAK = SMOKE ? 300 : 100_000;
/** The smoke run keeps every step but the slowest inputs. */
const SIZES = SMOKE ? (['1KiB', '1MiB'] as const) : (['1KiB', '1MiB', '10MiB'] as const);
const CONCURRENCY = SMOKE ? [1, 32] : [1, 8, 32, 128];
const KIND_SBOM = 4;

const dir = mkdtempSync(join(tmpdir(), 'policyd-bench-'));
const log = (...a: unknown[]) => process.stderr.write(`${a.join(' ')}\n`);
const results: Record<string, unknown> = {};

function file(name: string, bytes: Uint8Array): string {
  writeFileSync(join(dir, name), bytes);
  return join(dir, name);
}

async function repeated(what: string, run: () => Promise<LoadResult>): Promise<LoadResult> {
  const runs: LoadResult[] = [];
  for (let i = 0; i < REPEATS; i++) runs.push(await run());
  const pick = (k: keyof LoadResult) => median(runs.map((r) => r[k] as number));
  const errors = runs.reduce<Record<string, number>>((acc, r) => {
    for (const [k, v] of Object.entries(r.errors)) acc[k] = (acc[k] ?? 0) + v;
    return acc;
  }, {});
  const out = {
    ...runs[0]!,
    throughput: pick('throughput'),
    p50: pick('p50'),
    p90: pick('p90'),
    p99: pick('p99'),
    max: pick('max'),
    generatorCpuShare: pick('generatorCpuShare'),
    ok: pick('ok'),
    errors,
  };
  log(`  ${what}: ${out.throughput.toFixed(0)}/s p50 ${out.p50.toFixed(3)} ms p99 ${out.p99.toFixed(3)} ms`);
  return out;
}

async function load(client: PolicyEngineClient, name: string, wasm: Uint8Array): Promise<number> {
  const t = performance.now();
  await client.loadPolicy({ source: { case: 'wasmModule', value: wasm }, name });
  return performance.now() - t;
}

// ---------------------------------------------------------------- inputs
const trivial = await bigModule(2_000);
const big = await bigModule(800_000);
const sbomPolicy = readFileSync(`${ROOT}examples/policies/sbom/policy.wasm`);
const tinygo = readFileSync(`${ROOT}../shared/fixtures/chainloop/simple_test_policy.wasm`);
const materials = { '1KiB': cyclonedx(1024), '1MiB': cyclonedx(2 ** 20), '10MiB': SMOKE ? Buffer.from('{}') : cyclonedx(10 * 2 ** 20) };
const materialFiles = Object.fromEntries(Object.entries(materials).map(([k, v]) => [k, file(`sbom-${k}.json`, v)])) as Record<
  keyof typeof materials,
  string
>;
results.inputs = {
  trivialModuleBytes: trivial.byteLength,
  bigModuleBytes: big.byteLength,
  sbomPolicyBytes: sbomPolicy.byteLength,
  materials: Object.fromEntries(Object.entries(materials).map(([k, v]) => [k, v.byteLength])),
};
log(`modules: trivial ${trivial.byteLength} B, big ${big.byteLength} B, sbom policy ${sbomPolicy.byteLength} B`);

// ---------------------------------------------------------------- transport ceiling
log('transport ceiling (no-op grpc-js Evaluate, separate process)');
const noop = await startNoopServer(join(dir, 'noop.sock'));
const ceiling: Record<string, LoadResult> = {};
for (const c of [1, 32])
  ceiling[`unix-c${c}`] = await repeated(`no-op unix c=${c}`, () =>
    runLoad({ target: noop.unix, material: materialFiles['1KiB'], concurrency: c, durationMs: D, warmupMs: WARM }),
  );
ceiling['tcp-c32'] = await repeated('no-op tcp c=32', () =>
  runLoad({ target: noop.tcp, material: materialFiles['1KiB'], concurrency: 32, durationMs: D, warmupMs: WARM }),
);
noop.stop();
results.ceiling = ceiling;

// ---------------------------------------------------------------- the daemon
log('daemon (separate process, default isolation: an instance in its new state per evaluation)');
let daemon: Daemon = await startDaemon(join(dir, 'd.sock'), ['--max-queue', '1024']);
let client = new PolicyEngineClient(daemon.unix);
await load(client, 'bench', trivial);
await load(client, 'bench-big', big);
await load(client, 'bench-sbom', sbomPolicy);
const matrix: Record<string, LoadResult> = {};
for (const transport of ['unix', 'tcp'] as const) {
  for (const c of CONCURRENCY) {
    matrix[`${transport}-c${c}`] = await repeated(`trivial 1KiB ${transport} c=${c}`, () =>
      runLoad({ target: daemon[transport], material: materialFiles['1KiB'], concurrency: c, durationMs: D, warmupMs: WARM }),
    );
  }
}
results.daemon = matrix;
const sizes: Record<string, LoadResult> = {};
for (const size of SIZES) {
  sizes[size] = await repeated(`sbom policy ${size} unix c=1`, () =>
    runLoad({
      target: daemon.unix,
      policy: 'bench-sbom',
      material: materialFiles[size],
      kind: KIND_SBOM,
      concurrency: 1,
      durationMs: size === '10MiB' ? D * 2 : D,
      warmupMs: WARM,
    }),
  );
}
results.materials = sizes;
const bigDaemon = await repeated('big module 1KiB unix c=32', () =>
  runLoad({ target: daemon.unix, policy: 'bench-big', material: materialFiles['1KiB'], concurrency: 32, durationMs: D, warmupMs: WARM }),
);
results.bigModuleDaemon = bigDaemon;

// ---------------------------------------------------------------- LoadPolicy cold
const coldLoads = { '30KB': [] as number[], '1MB': [] as number[] };
for (let i = 0; i < (SMOKE ? 1 : 5); i++) {
  coldLoads['30KB'].push(await load(client, `cold-small-${i}`, withCustomSection(sbomPolicy, `cold-${i}`)));
  coldLoads['1MB'].push(await load(client, `cold-big-${i}`, withCustomSection(await bigModule(1_000_000), `cold-${i}`)));
}
results.loadPolicyMs = { '30KB': median(coldLoads['30KB']), '1MB': median(coldLoads['1MB']) };
log(`LoadPolicy until ready: 30 KB ${median(coldLoads['30KB']).toFixed(1)} ms, 1 MB ${median(coldLoads['1MB']).toFixed(1)} ms`);
client.close();
await daemon.stop();

// ---------------------------------------------------------------- in-process references
log('in-process references (this process, one thread)');
const trivialModule = await WebAssembly.compile(trivial);
const sbomModule = await WebAssembly.compile(sbomPolicy);
const raw: Record<string, InProcessResult> = {
  'trivial-fresh': await rawInProcess(trivialModule, materials['1KiB'], D, true),
  'trivial-reused': await rawInProcess(trivialModule, materials['1KiB'], D, false),
};
for (const size of SIZES) raw[`sbom-${size}-fresh`] = await rawInProcess(sbomModule, materials[size], size === '10MiB' ? D * 2 : D, true);
for (const [k, v] of Object.entries(raw)) log(`  raw ${k}: ${v.throughput.toFixed(0)}/s p50 ${v.p50.toFixed(3)} ms`);
results.raw = raw;
const baselineRuns: number[] = [];
for (let i = 0; i < REPEATS; i++) baselineRuns.push((await chainloopBaseline(big, materials['1KiB'], SMOKE ? D : 2 * D, 2)).throughput);
results.chainloopBaseline = { throughput: median(baselineRuns), threads: 2 };
log(`  Chainloop-style compile-per-evaluation, ${big.byteLength} B module, 2 threads: ${median(baselineRuns).toFixed(1)}/s`);

// ---------------------------------------------------------------- memory: idle with 10 policies, soak
log('memory');
daemon = await startDaemon(join(dir, 'm.sock'), ['--threads', '2', '--max-queue', '1024', '--max-event-loop-lag-ms', '0']);
client = new PolicyEngineClient(daemon.unix);
for (let i = 0; i < 10; i++) await load(client, `p${i}`, withCustomSection(i % 2 ? sbomPolicy : trivial, `p${i}`));
// The soak evaluates a WASI policy, Chainloop's TinyGo test policy: every real Chainloop policy is one.
await load(client, 'bench-wasi', tinygo);
await new Promise((r) => setTimeout(r, 1000));
const idleRss = daemon.rssMb();
const soakRate = matrix['unix-c32']!.throughput;
const warm = await runLoad({
  target: daemon.unix,
  policy: 'bench-wasi',
  material: materialFiles['1KiB'],
  kind: KIND_SBOM,
  concurrency: 32,
  durationMs: Math.max(300, (SOAK / 5 / soakRate) * 1000),
  warmupMs: 0,
});
const rssAfterWarmup = daemon.rssMb();
const soak = await runLoad({
  target: daemon.unix,
  policy: 'bench-wasi',
  material: materialFiles['1KiB'],
  kind: KIND_SBOM,
  concurrency: 32,
  durationMs: (SOAK / soakRate) * 1000,
  warmupMs: 0,
});
const rssAfterSoak = daemon.rssMb();
results.memory = {
  idleRssMb: idleRss,
  rssAfterWarmupMb: rssAfterWarmup,
  rssAfterSoakMb: rssAfterSoak,
  soakEvaluations: soak.ok + warm.ok,
  soakErrors: soak.errors,
};
log(
  `  idle RSS ${idleRss.toFixed(1)} MB; after ${warm.ok} ${rssAfterWarmup.toFixed(1)} MB; after ${soak.ok} more ${rssAfterSoak.toFixed(1)} MB`,
);
client.close();
await daemon.stop();

// ---------------------------------------------------------------- 2 x saturation
log('overload: open loop at 2 x the measured saturation throughput, default admission settings');
daemon = await startDaemon(join(dir, 'o.sock'));
client = new PolicyEngineClient(daemon.unix);
await load(client, 'bench', trivial);
const saturation = matrix['unix-c32']!.throughput;
const overload = await runLoad({ target: daemon.unix, material: materialFiles['1KiB'], rate: 2 * saturation, durationMs: D, warmupMs: 0 });
const refused = overload.errors['8'] ?? 0;
const other = Object.entries(overload.errors)
  .filter(([k]) => k !== '8')
  .reduce((n, [, v]) => n + v, 0);
results.overload = {
  offeredRate: 2 * saturation,
  accepted: overload.ok,
  refused,
  otherErrors: other,
  refusedShare: refused / (refused + overload.ok + other),
  acceptedP99: overload.p99,
  acceptedP50: overload.p50,
  generatorCpuShare: overload.generatorCpuShare,
};
log(`  accepted ${overload.ok}, refused ${refused} (RESOURCE_EXHAUSTED), other ${other}; accepted p99 ${overload.p99.toFixed(2)} ms`);
client.close();
await daemon.stop();
rmSync(dir, { recursive: true, force: true });

// ---------------------------------------------------------------- targets and report
const r = results as any;
const targets = [
  {
    id: 'R1',
    what: 'throughput, trivial policy, 1 KiB, c=32, unix ÷ no-op RPC ceiling',
    value: r.daemon['unix-c32'].throughput / r.ceiling['unix-c32'].throughput,
    target: '≥ 0.85',
    pass: (v: number) => v >= 0.85,
    fmt: (v: number) => v.toFixed(2),
  },
  {
    id: 'R2',
    what: `throughput with the ${(big.byteLength / 1000).toFixed(0)} KB module ÷ Chainloop-style compile per evaluation`,
    value: r.bigModuleDaemon.throughput / r.chainloopBaseline.throughput,
    target: '≥ 20',
    pass: (v: number) => v >= 20,
    fmt: (v: number) => v.toFixed(1),
  },
  {
    id: 'R3',
    what: 'p50 added latency at c=1 over the raw in-process call (unix), ms',
    value: r.daemon['unix-c1'].p50 - r.raw['trivial-fresh'].p50,
    target: '≤ 0.3 ms',
    pass: (v: number) => v <= 0.3,
    fmt: (v: number) => v.toFixed(3),
  },
  {
    id: 'R4',
    what: `${SIZES.at(-1)} SBOM end to end ÷ raw in-process evaluation (p50)`,
    value: r.materials[SIZES.at(-1)!].p50 / r.raw[`sbom-${SIZES.at(-1)}-fresh`].p50,
    target: '≤ 1.5',
    pass: (v: number) => v <= 1.5,
    fmt: (v: number) => v.toFixed(2),
  },
  {
    id: 'R5',
    what: 'LoadPolicy of a ~1 MB module until ready, ms',
    value: r.loadPolicyMs['1MB'],
    target: '≤ 100 ms',
    pass: (v: number) => v <= 100,
    fmt: (v: number) => v.toFixed(1),
  },
  {
    id: 'R6',
    what: 'at 2 × saturation: accepted p99, ms (excess refused at once, nothing hangs)',
    value: r.overload.acceptedP99,
    target: '≤ 50 ms',
    pass: (v: number) => v <= 50 && r.overload.otherErrors === 0,
    fmt: (v: number) => v.toFixed(1),
  },
  {
    id: 'R7a',
    what: 'idle RSS, 2 workers, 10 policies, MB',
    value: r.memory.idleRssMb,
    target: '≤ 150 MB',
    pass: (v: number) => v <= 150,
    fmt: (v: number) => v.toFixed(1),
  },
  {
    id: 'R7b',
    what: `RSS growth over a ${SOAK / 1000}k-evaluation soak of Chainloop's TinyGo (WASI) policy, after warm-up`,
    value: r.memory.rssAfterSoakMb / r.memory.rssAfterWarmupMb - 1,
    target: '≤ 10 %',
    pass: (v: number) => v <= 0.1,
    fmt: (v: number) => `${(v * 100).toFixed(1)} %`,
  },
];
results.targets = Object.fromEntries(targets.map((t) => [t.id, { value: t.value, pass: t.pass(t.value) }]));
const machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  date: new Date().toISOString(),
  smoke: SMOKE,
  repeats: REPEATS,
  durationMs: D,
};
results.machine = machine;
const ms = (v: number) => v.toFixed(3);
const row = (name: string, x: LoadResult) =>
  `| ${name} | ${x.throughput.toFixed(0)} | ${ms(x.p50)} | ${ms(x.p90)} | ${ms(x.p99)} | ${Object.keys(x.errors).length ? JSON.stringify(x.errors) : '–'} | ${(x.generatorCpuShare * 100).toFixed(0)} % |`;
const report = `# Benchmark results

Measured by \`make bench\` (${SMOKE ? 'SMOKE RUN — not a measurement' : `${REPEATS} repeats of ${D / 1000} s each; medians`}) on ${machine.date}:
${machine.cores} × ${machine.cpu}, ${machine.memoryGiB} GiB, Node ${machine.node}. **These machines are shared and noisy, and the
load generator, the daemon and its workers share the same ${machine.cores} cores: read the ratios, not the absolute numbers.**

## Targets

| | measure | value | target | |
|---|---|---|---|---|
${targets.map((t) => `| ${t.id} | ${t.what} | ${t.fmt(t.value)} | ${t.target} | ${t.target === '(informative)' ? '–' : t.pass(t.value) ? 'met' : '**missed**'} |`).join('\n')}

## Throughput and latency (Evaluate, trivial policy, 1 KiB CycloneDX)

| setup | evals/s | p50 ms | p90 ms | p99 ms | errors | load generator CPU |
|---|---|---|---|---|---|---|
${Object.entries(r.ceiling as Record<string, LoadResult>)
  .map(([k, v]) => row(`no-op RPC ceiling, ${k}`, v))
  .join('\n')}
${Object.entries(matrix)
  .map(([k, v]) => row(`daemon, ${k}`, v))
  .join('\n')}
${row(`daemon, ${(big.byteLength / 1000).toFixed(0)} KB module, unix-c32`, bigDaemon)}

## Material size (Chainloop's SBOM example policy, which parses its input; unix, c=1)

| material | daemon evals/s | daemon p50 ms | raw in-process p50 ms | ratio |
|---|---|---|---|---|
${SIZES.map((s) => `| ${s} | ${sizes[s]!.throughput.toFixed(1)} | ${ms(sizes[s]!.p50)} | ${ms(raw[`sbom-${s}-fresh`]!.p50)} | ${(sizes[s]!.p50 / raw[`sbom-${s}-fresh`]!.p50).toFixed(2)} |`).join('\n')}

## In-process references (one thread, no gRPC, no pool)

| call | calls/s | p50 ms | p99 ms |
|---|---|---|---|
${Object.entries(raw)
  .map(([k, v]) => `| ${k} | ${v.throughput.toFixed(0)} | ${ms(v.p50)} | ${ms(v.p99)} |`)
  .join('\n')}
| Chainloop-style: unique bytes, compile + instantiate + call, ${(big.byteLength / 1000).toFixed(0)} KB, 2 threads | ${r.chainloopBaseline.throughput.toFixed(1)} | | |

## Load, memory, overload

- LoadPolicy until ready (compiled, checked, instantiated once in a worker): 30 KB ${r.loadPolicyMs['30KB'].toFixed(1)} ms, ~1 MB ${r.loadPolicyMs['1MB'].toFixed(1)} ms (median).
- RSS with 2 workers and 10 policies, idle: ${r.memory.idleRssMb.toFixed(1)} MB; after warm-up ${r.memory.rssAfterWarmupMb.toFixed(1)} MB; after ${r.memory.soakEvaluations} evaluations ${r.memory.rssAfterSoakMb.toFixed(1)} MB.
- Open loop at 2 × saturation (${r.overload.offeredRate.toFixed(0)}/s offered, default queue and load shedding): ${r.overload.accepted} accepted (p50 ${r.overload.acceptedP50.toFixed(2)} ms, p99 ${r.overload.acceptedP99.toFixed(2)} ms), ${(r.overload.refusedShare * 100).toFixed(0)} % refused at once with RESOURCE_EXHAUSTED, ${r.overload.otherErrors} other errors; the load generator used ${(r.overload.generatorCpuShare * 100).toFixed(0)} % of a core.

The load generator is a separate process (bench/load-generator.ts, grpc-js client, HDR histogram); its
own CPU share is in the tables. Raw machine-readable numbers: \`results.json\`.
`;
// Hand-written notes (analysis, optimisation history) below the marker survive a new run.
const MARKER = '<!-- notes: kept across runs -->';
const reportFile = join(OUT, SMOKE ? 'RESULTS.smoke.md' : 'RESULTS.md');
let notes = '';
try {
  const previous = readFileSync(reportFile, 'utf8');
  if (previous.includes(MARKER)) notes = previous.slice(previous.indexOf(MARKER));
} catch {
  // first run
}
writeFileSync(join(OUT, SMOKE ? 'results.smoke.json' : 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(reportFile, `${report}\n${notes || `${MARKER}\n`}`);
log(report);
process.exit(0);
