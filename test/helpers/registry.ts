import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './paths.js';

/** oras and cosign, built by `make oci-tools` from the versions pinned in test/tools/. */
export const ORAS = join(ROOT, 'build/bin/oras');
export const COSIGN = join(ROOT, 'build/bin/cosign');
/** Debian's docker-registry (the CNCF distribution registry), installed by `make registry`. */
const REGISTRY = '/usr/bin/docker-registry';

export interface Registry {
  /** `127.0.0.1:<port>`, as refs and Docker config files name it. */
  host: string;
  /** A Docker config file logging in to it (with `auth`), or none. */
  dockerConfig?: string;
  dir: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/**
 * A real registry on loopback in its own directory; with `auth`, it asks for a password (htpasswd,
 * bcrypt, as registries are usually set up) and a Docker config file with the login is written.
 */
export async function startRegistry(auth?: { username: string; password: string }): Promise<Registry> {
  for (const tool of [REGISTRY]) if (!existsSync(tool)) throw new Error(`${tool} is missing: run \`make registry\` (make test does)`);
  const dir = mkdtempSync(join(tmpdir(), 'policyd-registry-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  let authConfig = '';
  let dockerConfig: string | undefined;
  if (auth) {
    const line = execFileSync('htpasswd', ['-Bbn', auth.username, auth.password], { encoding: 'utf8' });
    writeFileSync(join(dir, 'htpasswd'), line);
    authConfig = `auth:\n  htpasswd:\n    realm: policyd-test\n    path: ${join(dir, 'htpasswd')}\n`;
    dockerConfig = join(dir, 'config.json');
    const encoded = Buffer.from(`${auth.username}:${auth.password}`).toString('base64');
    writeFileSync(dockerConfig, JSON.stringify({ auths: { [host]: { auth: encoded } } }));
  }
  writeFileSync(
    join(dir, 'config.yml'),
    `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: ${host}\n${authConfig}`,
  );
  const child: ChildProcess = spawn(REGISTRY, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
  for (let i = 0; ; i++) {
    const up = await fetch(`http://${host}/v2/`).then(
      () => true,
      () => false,
    );
    if (up) break;
    if (i === 100 || child.exitCode !== null) throw new Error(`the registry did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host,
    dockerConfig,
    dir,
    async stop() {
      const exited = new Promise((resolve) => child.on('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs oras or cosign; throws with their output when they fail. */
export function tool(file: string, args: string[], env: Record<string, string> = {}): string {
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`make oci-tools\` (make test does)`);
  return execFileSync(file, args, { encoding: 'utf8', env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}
