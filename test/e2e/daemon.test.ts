import assert from 'node:assert/strict';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execFileSync, spawnSync } from 'node:child_process';
import { Client, Metadata, credentials, status, type ServiceError } from '@grpc/grpc-js';
import { pino } from 'pino';
import { PolicyEngineClient } from '../../clients/typescript/src/index.js';
import { loadConfig } from '../../src/config/load.js';
import { startDaemon, type RunningDaemon } from '../../src/daemon/daemon.js';
import { PolicyEngine } from '../../src/engine/policy-engine.js';
import { MaterialKind } from '../../src/gen/policyengine/v1/engine_pb.js';
import { PolicyServer, SERVICE_NAME } from '../../src/server/server.js';
import { defaultSocketPath } from '../../src/server/socket-path.js';
import { makePki } from '../helpers/certificates.js';
import { grpcError } from '../helpers/daemon.js';
import { example, exampleMaterial } from '../helpers/paths.js';
import { capturedLogger } from '../helpers/logs.js';
import { checkHealth } from '../helpers/standard-services.js';

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const simpleEval = (c: PolicyEngineClient, message = 'ok') =>
  c.evaluate({ policy: 'simple-validation', material: { content: Buffer.from(JSON.stringify({ message })), kind: MaterialKind.EVIDENCE } });

function copyExample(name: string, into: string): string {
  const dir = join(into, name);
  mkdirSync(dir, { recursive: true });
  copyFileSync(example(name), join(dir, 'policy.yaml'));
  copyFileSync(example(name, 'policy.wasm'), join(dir, 'policy.wasm'));
  return dir;
}

describe('serve: policies directory, admin port, metrics and hot reload', () => {
  let dir: string;
  let daemon: RunningDaemon;
  let client: PolicyEngineClient;
  const { logger, lines } = capturedLogger();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'policyd-daemon-'));
    copyExample('simple', dir);
    writeFileSync(join(dir, 'not-a-policy.yaml'), 'kind: ConfigMap\n');
    const config = loadConfig({
      flags: { listen: [`unix://${join(dir, 'd.sock')}`], policies: [dir], threads: 1, 'admin.listen': '127.0.0.1:0' },
    });
    daemon = await startDaemon(config, logger);
    client = new PolicyEngineClient(daemon.addresses[0]!);
  });
  after(async () => {
    client.close();
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads the directory at start and is ready', async () => {
    assert.deepEqual(
      (await client.listPolicies()).policies.map((p) => p.name),
      ['simple-validation'],
    );
    assert.equal(await checkHealth(daemon.addresses[0]!, SERVICE_NAME), 'SERVING');
    const ready = await fetch(`http://${daemon.adminAddress}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal((await fetch(`http://${daemon.adminAddress}/healthz`)).status, 200);
  });

  it('exports Prometheus metrics on the admin port', async () => {
    await simpleEval(client);
    await assert.rejects(
      client.evaluate({ policy: 'simple-validation', material: { content: Buffer.from('{'), kind: MaterialKind.EVIDENCE } }),
    );
    const text = await (await fetch(`http://${daemon.adminAddress}/metrics`)).text();
    assert.match(text, /policyd_evaluations_total\{policy="simple-validation",outcome="ok"\} 1/);
    assert.match(text, /policyd_evaluations_total\{policy="simple-validation",outcome="INVALID_MATERIAL"\} 1/);
    assert.match(text, /policyd_evaluation_duration_seconds_count\{policy="simple-validation"\} 2/);
    assert.match(text, /policyd_policies_loaded 1/);
    assert.match(text, /policyd_queue_depth 0/);
    assert.match(text, /policyd_pool_threads 1/);
    assert.match(text, /policyd_pool_workers_started_total 1/);
    // The worker's event loop was busy for part of its life, and no gauge of a share leaves 0-1.
    const utilization = Number(/^policyd_pool_utilization (\S+)$/m.exec(text)?.[1]);
    assert.ok(utilization > 0 && utilization <= 1, `policyd_pool_utilization ${utilization}`);
  });

  it('logs guest logs and one decision line with policy, digest and evaluation id', async () => {
    const res = await simpleEval(client, 'logged');
    const mine = lines.filter((l) => l.evaluationId === res.evaluationId);
    assert.deepEqual(
      mine.map((l) => l.msg),
      ['Validating message with max length: 100', 'Validation passed for message: logged', 'decision'],
    );
    assert.equal(mine[2]!.digest, res.policyDigest);
    assert.equal(mine[2]!.violationCount, 0);
  });

  it('reloads a changed policy, keeps the last good version when a change is broken, and follows additions and removals', async () => {
    const file = join(dir, 'simple', 'policy.yaml');
    const before = (await client.listPolicies()).policies[0]!.digest;
    writeFileSync(file, readFileSync(file, 'utf8').replace(/description: .*/, 'description: changed'));
    const changed = await eventually('the changed policy', async () => {
      const p = (await client.listPolicies()).policies[0]!;
      return p.digest !== before ? p : undefined;
    });
    assert.equal(changed.description, 'changed');

    writeFileSync(
      file,
      'apiVersion: chainloop.dev/v1\nkind: Policy\nmetadata: {name: simple-validation}\nspec: {policies: [{ref: gone.wasm}]}\n',
    );
    await eventually('the reload failure to be logged', async () =>
      lines.find((l) => l.msg === 'policy reload failed; the last good version keeps serving' && l.file === file),
    );
    assert.equal((await client.listPolicies()).policies[0]!.digest, changed.digest);
    assert.deepEqual((await simpleEval(client)).result!.violations, []);

    copyExample('sbom', dir);
    await eventually('the added policy', async () => ((await client.listPolicies()).policies.length === 2 ? true : undefined));
    unlinkSync(join(dir, 'sbom', 'policy.yaml'));
    await eventually('the removed policy', async () =>
      (await client.listPolicies()).policies.map((p) => p.name).join() === 'simple-validation' ? true : undefined,
    );
    await assert.rejects(
      client.evaluate({
        policy: 'sbom-validation',
        material: { content: exampleMaterial('sbom', 'pass.json'), kind: MaterialKind.SBOM_CYCLONEDX_JSON },
      }),
      grpcError(status.NOT_FOUND, 'POLICY_NOT_FOUND'),
    );
  });
});

/**
 * A directory laid out and updated exactly as the kubelet's AtomicWriter does for a mounted ConfigMap:
 * files in `..<timestamp>/`, `..data -> ..<timestamp>`, `key -> ..data/key`; an update writes a new
 * timestamped directory, points `..data_tmp` at it, renames `..data_tmp` over `..data`, adds or removes
 * the key links, and removes the old directory.
 */
class ConfigMapVolume {
  #version = 0;
  #current: string | undefined;
  constructor(readonly dir: string) {}

  update(files: Record<string, string | Buffer>): void {
    const stamp = `..2026_11_26_14_00_00.${String(++this.#version).padStart(9, '0')}`;
    mkdirSync(join(this.dir, stamp));
    for (const [key, content] of Object.entries(files)) writeFileSync(join(this.dir, stamp, key), content);
    symlinkSync(stamp, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    for (const key of Object.keys(files)) if (!existsSync(join(this.dir, key))) symlinkSync(join('..data', key), join(this.dir, key));
    for (const link of readdirSync(this.dir)) if (!link.startsWith('..') && !(link in files)) unlinkSync(join(this.dir, link));
    if (this.#current) rmSync(join(this.dir, this.#current), { recursive: true });
    this.#current = stamp;
  }
}

describe('serve: a policies directory mounted from a Kubernetes ConfigMap', () => {
  it("follows the kubelet's atomic swaps: loads at start, reloads a change, never unloads an unchanged policy, unloads a removed key, and keeps everything when the listing fails", async () => {
    const root = mkdtempSync(join(tmpdir(), 'policyd-configmap-'));
    const volume = new ConfigMapVolume(join(root, 'policies'));
    mkdirSync(volume.dir);
    const document = readFileSync(example('simple'), 'utf8');
    const wasm = readFileSync(example('simple', 'policy.wasm'));
    volume.update({ 'simple.yaml': document, 'policy.wasm': wasm });
    const { logger, lines } = capturedLogger();
    const d = await startDaemon(
      loadConfig({ flags: { listen: [`unix://${join(root, 'd.sock')}`], policies: [volume.dir], threads: 1 } }),
      logger,
    );
    const client = new PolicyEngineClient(d.addresses[0]!);
    const digest = async () => (await client.listPolicies()).policies.map((p) => `${p.name}@${p.description}`).join();
    try {
      assert.match(await digest(), /^simple-validation@The message must be non-empty/);
      // Evaluations keep succeeding through every swap below.
      let swapping = true;
      const failures: string[] = [];
      const traffic = (async () => {
        while (swapping) await simpleEval(client).catch((err: Error) => failures.push(err.message));
      })();

      volume.update({ 'simple.yaml': document.replace(/description: .*/, 'description: second'), 'policy.wasm': wasm });
      await eventually('the changed policy', async () => ((await digest()) === 'simple-validation@second' ? true : undefined));

      // An update of another key leaves the policy's bytes as they were.
      volume.update({ 'simple.yaml': document.replace(/description: .*/, 'description: second'), 'policy.wasm': wasm, 'notes.txt': 'x' });
      await d.policies.sync();
      assert.equal(await digest(), 'simple-validation@second');

      // The volume vanishes for a moment (the listing fails): nothing is unloaded.
      renameSync(volume.dir, `${volume.dir}-away`);
      await d.policies.sync();
      assert.equal(await digest(), 'simple-validation@second');
      renameSync(`${volume.dir}-away`, volume.dir);
      swapping = false;
      await traffic;
      assert.deepEqual(failures, []);
      assert.deepEqual(
        lines.filter((l) => String(l.msg).startsWith('policy unloaded')),
        [],
      );

      volume.update({ 'policy.wasm': wasm });
      await eventually('the removed key to unload its policy', async () => ((await digest()) === '' ? true : undefined));
      assert.ok(lines.some((l) => l.msg === 'cannot list the policy files; every loaded policy keeps serving'));
    } finally {
      client.close();
      await d.stop();
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('serve: listeners and authentication', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'policyd-tls-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const quiet = pino({ level: 'silent' });

  it('refuses a non-loopback listener without TLS, or without credentials, unless told to accept the risk', async () => {
    await assert.rejects(
      startDaemon(loadConfig({ flags: { listen: ['0.0.0.0:0'], threads: 1, 'auth.adminTokens': ['an-admin-token-0123456789'] } }), quiet),
      /refusing plaintext gRPC on 0\.0\.0\.0:0.*--tls-insecure/,
    );
    await assert.rejects(
      startDaemon(loadConfig({ flags: { listen: ['0.0.0.0:0'], threads: 1, 'tls.insecure': true } }), quiet),
      /refusing to serve 0\.0\.0\.0:0 without credentials.*--auth-admin-tokens.*--auth-anonymous/,
    );
    for (const flags of [{ 'auth.adminTokens': ['an-admin-token-0123456789'] }, { 'auth.anonymous': 'evaluate' }]) {
      const told = await startDaemon(loadConfig({ flags: { listen: ['0.0.0.0:0'], threads: 1, 'tls.insecure': true, ...flags } }), quiet);
      await told.stop();
    }
  });

  it('creates its unix socket with mode 0600', async () => {
    const socket = join(dir, 'mode.sock');
    const d = await startDaemon(loadConfig({ flags: { listen: [`unix://${socket}`], threads: 1 } }), quiet);
    try {
      const { statSync } = await import('node:fs');
      assert.equal(statSync(socket).mode & 0o777, 0o600);
    } finally {
      await d.stop();
    }
  });

  it('never takes a socket path from a live daemon or from a file, and replaces a stale socket', async () => {
    const socket = join(dir, 'taken.sock');
    const first = await startDaemon(loadConfig({ flags: { listen: [`unix://${socket}`], threads: 1 } }), quiet);
    const client = new PolicyEngineClient(`unix://${socket}`);
    try {
      await assert.rejects(
        startDaemon(loadConfig({ flags: { listen: [`unix://${socket}`], threads: 1 } }), quiet),
        /another process is serving on it/,
      );
      assert.deepEqual((await client.listPolicies()).policies, [], 'the first daemon still serves');
    } finally {
      client.close();
      await first.stop();
    }
    const file = join(dir, 'a-file.sock');
    writeFileSync(file, 'keep me');
    await assert.rejects(
      startDaemon(loadConfig({ flags: { listen: [`unix://${file}`], threads: 1 } }), quiet),
      /exists and is not a socket/,
    );
    assert.equal(readFileSync(file, 'utf8'), 'keep me');
    const stale = join(dir, 'stale.sock');
    // A process killed while listening leaves its socket file behind.
    spawnSync(process.execPath, [
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    assert.ok(lstatSync(stale).isSocket());
    const d = await startDaemon(loadConfig({ flags: { listen: [`unix://${stale}`], threads: 1 } }), quiet);
    await d.stop();
  });

  it('keeps the default socket in a directory of its own with mode 0700, and refuses one that others can write', async () => {
    const previous = process.env.TMPDIR;
    process.env.TMPDIR = mkdtempSync(join(tmpdir(), 'policyd-tmpdir-'));
    try {
      const socket = defaultSocketPath();
      assert.equal(dirname(socket), join(process.env.TMPDIR, `wasm-policyd-${process.getuid!()}`));
      const d = await startDaemon(loadConfig({ flags: { listen: [`unix://${socket}`], threads: 1 } }), quiet);
      assert.equal(statSync(dirname(socket)).mode & 0o777, 0o700);
      await d.stop();
      chmodSync(dirname(socket), 0o777);
      await assert.rejects(
        startDaemon(loadConfig({ flags: { listen: [`unix://${socket}`], threads: 1 } }), quiet),
        /must be a directory owned by this user with mode 0700/,
      );
    } finally {
      rmSync(process.env.TMPDIR, { recursive: true, force: true });
      if (previous === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = previous;
    }
  });

  it('does not start with a certificate that does not parse or a key that does not match it', async () => {
    const a = makePki(dir, 'start-a');
    const b = makePki(dir, 'start-b');
    const garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, 'not a certificate');
    const start = (cert: string, key: string) =>
      startDaemon(
        loadConfig({
          flags: {
            listen: ['127.0.0.1:0'],
            threads: 1,
            'tls.cert': cert,
            'tls.key': key,
            'auth.adminTokens': ['an-admin-token-0123456789'],
          },
        }),
        quiet,
      );
    await assert.rejects(start(garbage, a.key), /garbage.pem is not a PEM certificate/);
    await assert.rejects(start(a.cert, b.key), /start-b-key.pem is not the private key of .*start-a-cert.pem/);
  });

  it('separates the admin and evaluate roles: only admin tokens load and unload; health stays open', async () => {
    const admin = 'an-admin-token-0123456789';
    const evaluator = 'an-evaluate-token-0123456789';
    const flags = {
      listen: ['127.0.0.1:0'],
      threads: 1,
      'auth.adminTokens': [admin],
      'auth.evaluateTokens': [evaluator],
      policies: [example('simple')],
    };
    const d = await startDaemon(loadConfig({ flags }), quiet);
    const anonymous = new PolicyEngineClient(d.addresses[0]!);
    const wrong = new PolicyEngineClient(d.addresses[0]!, { token: 'another-long-enough-token' });
    const evaluating = new PolicyEngineClient(d.addresses[0]!, { token: evaluator });
    const managing = new PolicyEngineClient(d.addresses[0]!, { token: admin });
    const always = {
      source: { case: 'policyDocument' as const, value: readFileSync(example('simple')) },
      scripts: { 'policy.wasm': readFileSync(example('simple', 'policy.wasm')) },
    };
    try {
      await assert.rejects(anonymous.listPolicies(), grpcError(status.UNAUTHENTICATED, 'UNAUTHENTICATED', /needs credentials/));
      await assert.rejects(simpleEval(wrong), grpcError(status.UNAUTHENTICATED, 'UNAUTHENTICATED', /unknown bearer token/));
      assert.deepEqual((await simpleEval(evaluating)).result!.violations, []);
      assert.equal((await evaluating.listPolicies()).policies.length, 1);
      await assert.rejects(
        evaluating.loadPolicy(always),
        grpcError(status.PERMISSION_DENIED, 'NOT_PERMITTED', /LoadPolicy needs the admin role.*evaluate role/),
      );
      await assert.rejects(evaluating.unloadPolicy({ policy: 'simple-validation' }), grpcError(status.PERMISSION_DENIED, 'NOT_PERMITTED'));
      assert.equal((await managing.loadPolicy(always)).alreadyLoaded, true);
      assert.equal((await managing.unloadPolicy({ policy: 'simple-validation' })).policy!.name, 'simple-validation');
      assert.equal(await checkHealth(d.addresses[0]!, SERVICE_NAME), 'SERVING');
    } finally {
      for (const c of [anonymous, wrong, evaluating, managing]) c.close();
      await d.stop();
    }
  });

  it('checks credentials before reading the request: undecodable bytes are UNAUTHENTICATED without a token, INVALID_ARGUMENT with one', async () => {
    const d = await startDaemon(
      loadConfig({ flags: { listen: ['127.0.0.1:0'], threads: 1, 'auth.adminTokens': ['an-admin-token-0123456789'] } }),
      quiet,
    );
    const raw = new Client(d.addresses[0]!, credentials.createInsecure());
    try {
      const garbage = Buffer.from([0xff, 0xff, 0xff, 0xff]);
      const answer = await new Promise<ServiceError | null>((resolve) =>
        raw.makeUnaryRequest(
          '/policyengine.v1.PolicyEngineService/LoadPolicy',
          (b: Buffer) => b,
          (b: Buffer) => b,
          garbage,
          (err) => resolve(err),
        ),
      );
      assert.ok(grpcError(status.UNAUTHENTICATED, 'UNAUTHENTICATED')(answer));
      const authorized = new Metadata();
      authorized.set('authorization', 'Bearer an-admin-token-0123456789');
      const decoded = await new Promise<ServiceError | null>((resolve) =>
        raw.makeUnaryRequest(
          '/policyengine.v1.PolicyEngineService/LoadPolicy',
          (b: Buffer) => b,
          (b: Buffer) => b,
          garbage,
          authorized,
          (err) => resolve(err),
        ),
      );
      assert.ok(
        grpcError(status.INVALID_ARGUMENT, 'INVALID_REQUEST', /not a valid policyengine.v1.LoadPolicyRequest message/)(decoded),
        'and with credentials, undecodable bytes are INVALID_ARGUMENT, not INTERNAL',
      );
    } finally {
      raw.close();
      await d.stop();
    }
  });

  it('gives verified client certificates the evaluate role, and the admin role to listed identities', async () => {
    const server = makePki(dir, 'roles-server');
    const ca = makePki(dir, 'roles-client', 'control-plane');
    const d = await startDaemon(
      loadConfig({
        flags: {
          listen: ['127.0.0.1:0'],
          threads: 1,
          'tls.cert': server.cert,
          'tls.key': server.key,
          'tls.clientCa': ca.ca,
          'auth.adminIdentities': ['control-plane'],
        },
      }),
      quiet,
    );
    // A second certificate from the same CA, with another name.
    const other = join(dir, 'roles-other');
    execFileSync(
      'openssl',
      [
        'req',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        `${other}-key.pem`,
        '-out',
        `${other}.csr`,
        '-subj',
        '/CN=ci-runner',
      ],
      { stdio: 'ignore' },
    );
    execFileSync(
      'openssl',
      [
        'x509',
        '-req',
        '-in',
        `${other}.csr`,
        '-CA',
        ca.ca,
        '-CAkey',
        ca.ca.replace('ca.pem', 'ca.key'),
        '-CAcreateserial',
        '-out',
        `${other}-cert.pem`,
        '-days',
        '2',
      ],
      { stdio: 'ignore' },
    );
    const client = (key: string, cert: string) =>
      new PolicyEngineClient(d.addresses[0]!.replace('127.0.0.1', 'localhost'), {
        credentials: credentials.createSsl(readFileSync(server.ca), readFileSync(key), readFileSync(cert)),
      });
    const controlPlane = client(ca.key, ca.cert);
    const runner = client(`${other}-key.pem`, `${other}-cert.pem`);
    const load = { source: { case: 'wasmModule' as const, value: readFileSync(example('simple', 'policy.wasm')) }, name: 'by-certificate' };
    try {
      assert.deepEqual((await runner.listPolicies()).policies, []);
      await assert.rejects(runner.loadPolicy(load), grpcError(status.PERMISSION_DENIED, 'NOT_PERMITTED'));
      assert.equal((await controlPlane.loadPolicy(load)).policy!.name, 'by-certificate');
    } finally {
      controlPlane.close();
      runner.close();
      await d.stop();
    }
  });

  it('serves TLS with client certificates (mTLS) and picks up renewed certificate files', async () => {
    const first = makePki(dir, 'first');
    const clientPki = makePki(dir, 'client', 'control-plane');
    const serving = { cert: join(dir, 'serving-cert.pem'), key: join(dir, 'serving-key.pem') };
    copyFileSync(first.cert, serving.cert);
    copyFileSync(first.key, serving.key);
    const engine = new PolicyEngine({ threads: 1 });
    const rejected: string[] = [];
    const server = new PolicyServer(engine, {
      listen: ['127.0.0.1:0'],
      tls: { ...serving, clientCa: clientPki.ca, refreshMs: 100, onRejected: (e) => rejected.push(e) },
    });
    const [address] = await server.listen();
    server.markReady();
    const clientFor = (ca: string, withCert: boolean) =>
      new PolicyEngineClient(address!.replace('127.0.0.1', 'localhost'), {
        credentials: credentials.createSsl(
          readFileSync(ca),
          withCert ? readFileSync(clientPki.key) : null,
          withCert ? readFileSync(clientPki.cert) : null,
        ),
      });
    const trusted = clientFor(first.ca, true);
    const anonymous = clientFor(first.ca, false);
    try {
      assert.deepEqual((await trusted.listPolicies()).policies, []);
      await assert.rejects(anonymous.listPolicies(), (err: { code?: number }) => err.code === status.UNAVAILABLE);
      const second = makePki(dir, 'second');
      copyFileSync(second.cert, serving.cert);
      copyFileSync(second.key, serving.key);
      await eventually('the renewed certificate', async () => {
        const renewed = clientFor(second.ca, true);
        try {
          return (await renewed.listPolicies()) ? true : undefined;
        } finally {
          renewed.close();
        }
      });
      // A rotation gone wrong (garbage, then a key that does not match) is refused; the last good
      // certificate keeps serving new connections.
      writeFileSync(serving.cert, 'not a certificate');
      await eventually('the garbage to be refused', async () =>
        rejected.some((e) => /serving-cert.pem is not a PEM certificate; the previous certificate keeps serving/.test(e))
          ? true
          : undefined,
      );
      copyFileSync(second.cert, serving.cert);
      copyFileSync(first.key, serving.key);
      await eventually('the mismatched key to be refused', async () =>
        rejected.some((e) => /serving-key.pem is not the private key of/.test(e)) ? true : undefined,
      );
      const afterBadRotation = clientFor(second.ca, true);
      try {
        assert.deepEqual((await afterBadRotation.listPolicies()).policies, []);
      } finally {
        afterBadRotation.close();
      }
    } finally {
      trusted.close();
      anonymous.close();
      await server.shutdown(0);
      await engine.close();
    }
  });
});

describe('serve: drain under load', () => {
  it('finishes every accepted evaluation when stopped, refuses the rest at once, and loses none', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'policyd-drain-'));
    const d = await startDaemon(
      loadConfig({ flags: { listen: [`unix://${join(dir, 'd.sock')}`], threads: 2, policies: [example('sbom')], graceMs: 20_000 } }),
      pino({ level: 'silent' }),
    );
    const client = new PolicyEngineClient(d.addresses[0]!);
    const material = { content: exampleMaterial('sbom', 'pass.json'), kind: MaterialKind.SBOM_CYCLONEDX_JSON };
    const outcomes: string[] = [];
    let stopping = false;
    const load = (async () => {
      const workers = Array.from({ length: 16 }, async () => {
        for (let i = 0; i < 40; i++) {
          const sentWhileStopping = stopping;
          try {
            const res = await client.evaluate({ policy: 'sbom-validation', material });
            outcomes.push(
              res.result!.skipped === false && res.result!.violations.length === 0 ? (sentWhileStopping ? 'ok-late' : 'ok') : 'wrong',
            );
          } catch (err) {
            const code = (err as { code?: number }).code;
            // Refused at once (draining, or load shedding) is an answer, not a loss.
            outcomes.push(
              code === status.UNAVAILABLE
                ? 'unavailable'
                : code === status.RESOURCE_EXHAUSTED
                  ? 'refused'
                  : `error ${(err as Error).message}`,
            );
          }
        }
      });
      await Promise.all(workers);
    })();
    await eventually('some completed evaluations', async () => (outcomes.length >= 50 ? true : undefined));
    stopping = true;
    await d.stop();
    await load;
    client.close();
    rmSync(dir, { recursive: true, force: true });
    const counts: Record<string, number> = {};
    for (const o of outcomes) counts[o] = (counts[o] ?? 0) + 1;
    assert.equal(outcomes.length, 16 * 40, 'every request got an answer');
    assert.deepEqual(
      Object.keys(counts).filter((k) => !['ok', 'ok-late', 'unavailable', 'refused'].includes(k)),
      [],
      JSON.stringify(counts),
    );
    assert.ok((counts.ok ?? 0) >= 50 && (counts.unavailable ?? 0) > 0, JSON.stringify(counts));
  });
});
