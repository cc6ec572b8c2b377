import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.js';
import { type RunningDaemon, startDaemon } from '../../src/daemon/daemon.js';
import { ROOT, example } from '../helpers/paths.js';

const TSC = join(ROOT, 'node_modules/.bin/tsc');

/** A TypeScript program written against the package as a consumer would, by its name only. */
const CONSUMER = `import { MaterialKind, PolicyEngineClient, PolicydError } from '@wasm-policyd/client';
import { readFileSync } from 'node:fs';

const [address, token, policyYaml, wasm] = process.argv.slice(2) as [string, string, string, string];
const client = new PolicyEngineClient(address, { token });
const load = { source: { case: 'policyDocument' as const, value: readFileSync(policyYaml) }, scripts: { 'policy.wasm': readFileSync(wasm) } };
const loaded = await client.loadPolicy(load);
const digest: string = loaded.policy!.digest;
const evaluate = (message: string) =>
  client.evaluateOrLoad(load, { policy: digest, material: { content: new TextEncoder().encode(JSON.stringify({ message })), kind: MaterialKind.EVIDENCE } }, { deadlineMs: 5000 });
const ok = await evaluate('hello');
const bad = await evaluate('');
let error: { code: number; reason: string; policy?: string } | undefined;
try {
  await client.evaluate({ policy: 'no-such-policy', material: { content: new Uint8Array(), kind: MaterialKind.EVIDENCE } });
} catch (err) {
  if (err instanceof PolicydError) error = { code: err.code, reason: err.reason, policy: err.policy };
}
const aborted = new AbortController();
aborted.abort();
const cancelled = await client.listPolicies({}, { signal: aborted.signal }).then(() => 'not cancelled', () => 'cancelled');
console.log(JSON.stringify({ name: loaded.policy!.name, ok: ok.result!.violations.length, bad: bad.result!.violations.map((v) => v.message), error, cancelled }));
client.close();
`;

describe('the TypeScript client package (@wasm-policyd/client), as a consumer installs it', () => {
  let dir: string;
  let daemon: RunningDaemon;
  const token = 'a-consumer-admin-token-0123';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'policyd-ts-consumer-'));
    daemon = await startDaemon(
      loadConfig({ flags: { listen: [`unix://${join(dir, 'd.sock')}`], threads: 1, 'auth.adminTokens': [token] } }),
      pino({ level: 'silent' }),
    );
  });
  after(async () => {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('packs, installs by name with its types, compiles a strict TypeScript program and calls a live daemon', async () => {
    // npm pack, as a publish would: only what package.json's "files" lists.
    const packed = execFileSync('npm', ['pack', '--pack-destination', dir, '--json'], {
      cwd: join(ROOT, 'clients/typescript'),
      encoding: 'utf8',
    });
    const [{ filename, files }] = JSON.parse(packed) as [{ filename: string; files: { path: string }[] }];
    assert.ok(
      files.some((f) => f.path === 'dist/index.d.ts') && files.every((f) => !f.path.startsWith('src/')),
      JSON.stringify(files.map((f) => f.path)),
    );
    const project = join(dir, 'consumer');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(dir, filename)], { cwd: project, stdio: 'pipe' });
    writeFileSync(join(project, 'main.ts'), CONSUMER);
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          skipLibCheck: true,
          types: ['node'],
          typeRoots: [join(ROOT, 'node_modules/@types')],
        },
        files: ['main.ts'],
      }),
    );
    execFileSync(TSC, ['-p', project], { stdio: 'pipe' });
    assert.ok(readdirSync(project).includes('main.js'));
    copyFileSync(example('simple', 'policy.wasm'), join(project, 'policy.wasm'));
    // Asynchronously: the daemon answering it runs on this thread.
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [join(project, 'main.js'), daemon.addresses[0]!, token, example('simple'), join(project, 'policy.wasm')],
      {
        timeout: 60_000,
      },
    );
    assert.deepEqual(JSON.parse(stdout), {
      name: 'simple-validation',
      ok: 0,
      bad: ['message cannot be empty'],
      error: { code: 5, reason: 'POLICY_NOT_FOUND', policy: 'no-such-policy' },
      cancelled: 'cancelled',
    });
  });
});
