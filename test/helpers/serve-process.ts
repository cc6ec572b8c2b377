import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { PolicyEngineClient } from '../../clients/typescript/src/index.js';
import { DAEMON_NODE_FLAGS } from '../../src/config/defaults.js';
import { CLI, ROOT } from './paths.js';

export interface ServeProcess {
  process: ChildProcess;
  socket: string;
  client: PolicyEngineClient;
  log: () => string;
}

/** `wasm-policyd serve` as its own process on a unix socket in `dir`, ready: to kill it, or to read its RSS. */
export async function serveProcess(dir: string, flags: string[] = []): Promise<ServeProcess> {
  const socket = `unix://${join(dir, 'policyd.sock')}`;
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, CLI, 'serve', '--listen', socket, '--threads', '1', ...flags], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, POLICYD_ADMIN_LISTEN: '' },
  });
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
  for (let i = 0; i < 200 && !log.includes('"msg":"ready"'); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(log, /"msg":"ready"/, log);
  return { process: child, socket, client: new PolicyEngineClient(socket), log: () => log };
}

/** SIGKILL: no drain, no cleanup, as an OOM kill. */
export async function killProcess(daemon: ServeProcess): Promise<void> {
  daemon.client.close();
  const exited = new Promise((resolve) => daemon.process.on('exit', resolve));
  daemon.process.kill('SIGKILL');
  await exited;
}
