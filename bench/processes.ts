import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DAEMON_NODE_FLAGS } from '../src/config/defaults.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
// As the daemon's launchers run it (docs/design-notes.md, "Each isolate's young generation is sized").
const NODE_ARGS = ['--disable-warning=ExperimentalWarning', ...DAEMON_NODE_FLAGS];

export interface Daemon {
  child: ChildProcess;
  tcp: string;
  unix: string;
  /** host:port of the admin HTTP server, when one was asked for. */
  admin?: string;
  rssMb(): number;
  stop(): Promise<void>;
}

/** Resident memory of a process (all its threads), from /proc. */
export function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

/**
 * Runs a load generator to its end: its standard output, and the CPU seconds (user + system) it used,
 * read with the shell's `times` (which prints the shell's and then its children's times).
 */
export function runGenerator(command: string, args: string[]): { out: string; cpuSeconds: number } {
  const quoted = args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const out = execFileSync('bash', ['-c', `${command} ${quoted} && times`], { encoding: 'utf8', maxBuffer: 2 ** 26 });
  const [, children] = out.trim().split('\n').slice(-2);
  const cpuSeconds = [...children!.matchAll(/(\d+)m([\d.]+)s/g)].reduce((t, m) => t + Number(m[1]) * 60 + Number(m[2]), 0);
  return { out, cpuSeconds };
}

/** Evaluations the daemon answered, by outcome (ok, or the ErrorInfo reason), from its admin metrics. */
export async function evaluationOutcomes(admin: string): Promise<Record<string, number>> {
  const text = await (await fetch(`http://${admin}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const m of text.matchAll(/^policyd_evaluations_total\{[^}]*outcome="([^"]+)"[^}]*\} (\d+)/gm))
    counts[m[1]!] = (counts[m[1]!] ?? 0) + Number(m[2]);
  return counts;
}

/**
 * The daemon as the native load generator drives it: two workers, a queue deep enough for 32 streams
 * and load shedding off, so nothing is refused; the admin port for the outcome counts.
 */
export const SATURATION_FLAGS = ['--threads', '2', '--max-queue', '64', '--max-event-loop-lag-ms', '0', '--admin-listen', '127.0.0.1:0'];

/** Starts `wasm-policyd serve` as its own process and waits until it is ready. */
export function startDaemon(socket: string, flags: string[] = []): Promise<Daemon> {
  const child = spawn(
    process.execPath,
    [
      ...NODE_ARGS,
      `${ROOT}dist/src/cli/main.js`,
      'serve',
      '--listen',
      '127.0.0.1:0',
      '--listen',
      `unix://${socket}`,
      '--admin-listen',
      '',
      '--log-decisions',
      'false',
      ...flags,
    ],
    {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  return new Promise((resolve, reject) => {
    let addresses: string[] = [];
    let admin: string | undefined;
    let buffered = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      for (;;) {
        const nl = buffered.indexOf('\n');
        if (nl < 0) break;
        const line = JSON.parse(buffered.slice(0, nl)) as { msg: string; addresses?: string[]; admin?: string };
        buffered = buffered.slice(nl + 1);
        if (line.msg === 'listening') ({ addresses, admin } = line as { addresses: string[]; admin?: string });
        if (line.msg === 'ready') {
          resolve({
            child,
            tcp: addresses[0]!,
            unix: addresses[1]!,
            admin,
            rssMb: () => rssMb(child.pid!),
            stop: () =>
              new Promise((done) => {
                child.once('exit', () => done());
                child.kill('SIGTERM');
              }),
          });
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`daemon exited with ${code}`)));
  });
}

/** Starts the no-op gRPC server (transport ceiling) as its own process. */
export function startNoopServer(socket: string): Promise<{ tcp: string; unix: string; pid: number; stop(): void }> {
  const child = spawn(process.execPath, [...NODE_ARGS, `${ROOT}dist/bench/noop-server.js`, '127.0.0.1:0', `unix://${socket}`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve) => {
    child.stdout!.once('data', (chunk: Buffer) => {
      const a = JSON.parse(chunk.toString()) as { tcp: string; unix: string };
      resolve({ ...a, pid: child.pid!, stop: () => child.kill('SIGKILL') });
    });
  });
}

export interface LoadResult {
  ok: number;
  errors: Record<string, number>;
  seconds: number;
  throughput: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  generatorCpuShare: number;
}

export interface LoadOptions {
  target: string;
  policy?: string;
  material: string;
  kind?: number;
  concurrency?: number;
  durationMs: number;
  warmupMs: number;
  rate?: number;
}

/** Runs the load generator (a separate process) once. */
export function runLoad(o: LoadOptions): Promise<LoadResult> {
  const args = [
    `${ROOT}dist/bench/load-generator.js`,
    '--target',
    o.target,
    '--policy',
    o.policy ?? 'bench',
    '--material',
    o.material,
    '--kind',
    String(o.kind ?? 4),
    '--concurrency',
    String(o.concurrency ?? 1),
    '--duration-ms',
    String(o.durationMs),
    '--warmup-ms',
    String(o.warmupMs),
    ...(o.rate ? ['--rate', String(Math.round(o.rate))] : []),
  ];
  const child = spawn(process.execPath, [...NODE_ARGS, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  return new Promise((resolve, reject) =>
    child.once('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out) as LoadResult) : reject(new Error(`load generator exited with ${code}`)),
    ),
  );
}
