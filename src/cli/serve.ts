import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PolicyEngine } from '../engine/policy-engine.js';
import { errorMessage } from '../errors/policyd-error.js';
import { PolicyServer } from '../server/server.js';

export interface ServeOptions {
  listen: string[];
  policy: string[];
  threads?: number;
  maxQueue: number;
  timeoutMs: number;
  maxTimeoutMs: number;
  allowedHostnames: string[];
  fileRoot: string;
  maxReceiveMb: number;
  reflection: boolean;
  guestLogLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  graceMs: number;
}

function log(fields: Record<string, unknown>): void {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...fields })}\n`);
}

/** Policy documents under a path: the file itself, or every *.yaml / *.yml / *.json below a directory. */
async function policyFiles(path: string): Promise<string[]> {
  if (!(await stat(path)).isDirectory()) return [path];
  const entries = await readdir(path, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && /\.(ya?ml)$/.test(e.name))
    .map((e) => join(e.parentPath ?? (e as unknown as { path: string }).path, e.name))
    .sort();
}

/** `wasm-policyd serve`: listen, preload policies, turn ready, drain on SIGTERM/SIGINT. */
export async function runServe(opts: ServeOptions): Promise<void> {
  const engine = new PolicyEngine({
    threads: opts.threads,
    maxQueue: opts.maxQueue,
    defaultTimeoutMs: opts.timeoutMs,
    maxTimeoutMs: opts.maxTimeoutMs,
    allowedHostnames: opts.allowedHostnames,
    fileRoot: opts.fileRoot,
    guestLogLevel: opts.guestLogLevel,
  });
  const server = new PolicyServer(engine, {
    listen: opts.listen,
    maxReceiveMessageBytes: opts.maxReceiveMb * 1024 * 1024,
    reflection: opts.reflection,
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log({ level: 'info', msg: 'draining', signal });
    server.shutdown(opts.graceMs).then(
      () => process.exit(0),
      (err: unknown) => {
        log({ level: 'error', msg: 'shutdown failed', error: errorMessage(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  const addresses = await server.listen();
  log({ level: 'info', msg: 'listening', addresses, threads: engine.pool.threads });
  for (const root of opts.policy) {
    for (const file of await policyFiles(root)) {
      const { policy } = await engine.load({ type: 'document', bytes: await readFile(file), baseDir: dirname(file), label: file });
      log({ level: 'info', msg: 'policy loaded', policy: policy.name, digest: policy.digest, file });
    }
  }
  server.markReady();
  log({ level: 'info', msg: 'ready', policies: engine.registry.size });
}
