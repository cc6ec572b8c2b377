import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { MaterialKind } from '../src/gen/policyengine/v1/engine_pb.js';
import { PolicyEngineClient } from '../clients/typescript/src/index.js';
import { cyclonedx } from './fixtures.js';
import { durationSeconds, evaluateFrame } from './h2load.js';
import { SATURATION_FLAGS, evaluationOutcomes, startDaemon } from './processes.js';

/**
 * The memory soak (`make soak`): the daemon's RSS against evaluations of a WASI policy — Chainloop's
 * TinyGo-built test policy — driven by h2load (C, Debian's nghttp2-client) over TCP, 1 connection × 32
 * streams, 1 KiB CycloneDX. A per-evaluation leak shows as a line that keeps rising after warm-up;
 * every evaluation's outcome is counted from the daemon's own metrics, so refusals cannot pass for work.
 * The issue's measure: RSS after warm-up grows at most 5 % over 1,000,000 evaluations. Warm-up is
 * `--warmup` evaluations (RSS rose to its level over 300,000–1,000,000 evaluations in the runs recorded
 * in bench/RESULTS.md: V8's committed heap pages, with its live heaps flat), then `--evaluations` are
 * measured.
 * Writes bench/SOAK-node24.md (every evaluation in an instance in its new state, the only isolation
 * there is: for this policy, one instance per host reset after each evaluation; the Node 20 record of
 * the same soak, with a new instance per evaluation, is bench/SOAK-fresh.md).
 */
const { values: o } = parseArgs({
  options: {
    warmup: { type: 'string', default: '1000000' },
    evaluations: { type: 'string', default: '1000000' },
    step: { type: 'string', default: '100000' },
    out: { type: 'string', default: 'bench/SOAK-node24.md' },
  },
});
const warmup = Number(o.warmup);
const total = warmup + Number(o.evaluations);
const step = Number(o.step);
if (warmup % step !== 0 || total % step !== 0) throw new Error('--warmup and --evaluations must be multiples of --step');
const METHOD = '/policyengine.v1.PolicyEngineService/Evaluate';

const dir = mkdtempSync(join(tmpdir(), 'policyd-soak-'));
const daemon = await startDaemon(join(dir, 'd.sock'), SATURATION_FLAGS);
const client = new PolicyEngineClient(daemon.tcp);
const wasm = readFileSync(new URL('../../../shared/fixtures/chainloop/simple_test_policy.wasm', import.meta.url));
await client.loadPolicy({ source: { case: 'wasmModule', value: wasm }, name: 'tinygo', kinds: [MaterialKind.SBOM_CYCLONEDX_JSON] });

evaluateFrame(join(dir, 'body'), 'tinygo', cyclonedx(1024), MaterialKind.SBOM_CYCLONEDX_JSON);

/** Seconds h2load took for `n` requests. */
async function h2load(n: number): Promise<number> {
  const { stdout } = await promisify(execFile)(
    'h2load',
    [
      '-n',
      String(n),
      '-c',
      '1',
      '-m',
      '32',
      '-d',
      join(dir, 'body'),
      '-H',
      'content-type: application/grpc',
      '-H',
      'te: trailers',
      `http://${daemon.tcp}${METHOD}`,
    ],
    { encoding: 'utf8', maxBuffer: 2 ** 24 },
  );
  return durationSeconds(stdout);
}

/**
 * RSS swings by tens of MB between the main thread's full collections (its old generation fills with
 * what its young generation promotes, then empties), so one reading per step lands anywhere in a swing.
 * Each step is read once a second while it runs, and reported by the median of those readings
 * beside the reading at its end.
 */
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rows: { evaluations: number; rssMb: number; medianMb: number; perSecond: number }[] = [
  { evaluations: 0, rssMb: daemon.rssMb(), medianMb: daemon.rssMb(), perSecond: 0 },
];
const started = Date.now();
for (let done = 0; done < total; done += step) {
  const readings: number[] = [];
  const reader = setInterval(() => readings.push(daemon.rssMb()), 1000);
  const seconds = await h2load(step);
  clearInterval(reader);
  const rssMb = daemon.rssMb();
  rows.push({ evaluations: done + step, rssMb, medianMb: median([...readings, rssMb]), perSecond: step / seconds });
  const last = rows.at(-1)!;
  console.error(
    `soak: ${last.evaluations} evaluations, RSS ${last.rssMb.toFixed(1)} MB (median of ${readings.length + 1} readings ${last.medianMb.toFixed(1)} MB), ${last.perSecond.toFixed(0)}/s`,
  );
}
const counts = await evaluationOutcomes(daemon.admin!);
const check = await client.evaluate({ policy: 'tinygo', material: { content: cyclonedx(1024), kind: MaterialKind.SBOM_CYCLONEDX_JSON } });
await daemon.stop();

// Growth after warm-up: the level of the last three steps against the level of the three that end the
// warm-up (each level the median of three), by the steps' medians and by the readings at their ends.
// Without a warm-up, the first three steps.
const atWarmup = warmup > 0 ? rows.findIndex((r) => r.evaluations === warmup) : 3;
const growthOf = (key: 'rssMb' | 'medianMb') => {
  const level = (r: typeof rows) => median(r.map((x) => x[key]));
  return level(rows.slice(-3)) / level(rows.slice(Math.max(1, atWarmup - 2), atWarmup + 1)) - 1;
};
const percent = (x: number) => `${(x * 100).toFixed(1)} %`;
const md = `# Memory soak — an instance in its new state per evaluation

Generated by \`make soak\` (bench/soak.ts) on ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${Math.round((Date.now() - started) / 60000)} min.
Chainloop's TinyGo \`simple_test_policy.wasm\` (imports WASI), h2load over TCP, 1 connection × 32 streams, 1 KiB
CycloneDX, 2 worker threads, queue 64, load shedding off. RSS of the daemon process (all threads) from /proc,
read once a second during each step (median) and at its end.

| evaluations | RSS MB, median of the step | RSS MB at the step's end | evaluations/s in the step |
|---|---|---|---|
${rows.map((r) => `| ${r.evaluations.toLocaleString('en')} | ${r.medianMb.toFixed(1)} | ${r.rssMb.toFixed(1)} | ${r.perSecond ? r.perSecond.toFixed(0) : '–'} |`).join('\n')}

Warm-up: the first ${warmup.toLocaleString('en')} evaluations. Growth over the ${(total - warmup).toLocaleString('en')} evaluations after it (the
last three steps against the three that end the warm-up): **${percent(growthOf('medianMb'))}** by the steps' medians,
${percent(growthOf('rssMb'))} by the readings at their ends. Outcomes counted by the daemon:
${Object.entries(counts)
  .map(([k, v]) => `\`${k}\` ${v}`)
  .join(', ')}. A last evaluation returned ${JSON.stringify(check.result?.violations.map((v) => v.message))}.
`;
writeFileSync(o.out!, md);
console.log(md);
