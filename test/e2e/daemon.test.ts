import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { credentials, status } from '@grpc/grpc-js';
import { pino } from 'pino';
import { PolicyEngineClient } from '../../src/cli/remote-client.js';
import { loadConfig } from '../../src/config/load.js';
import { startDaemon, type RunningDaemon } from '../../src/daemon/daemon.js';
import { PolicyEngine } from '../../src/engine/policy-engine.js';
import { MaterialKind } from '../../src/gen/policyengine/v1/engine_pb.js';
import { PolicyServer, SERVICE_NAME } from '../../src/server/server.js';
import { makePki } from '../helpers/certificates.js';
import { grpcError } from '../helpers/daemon.js';
import { example, exampleMaterial } from '../helpers/paths.js';
import { checkHealth } from '../helpers/standard-services.js';

/** A pino logger whose JSON lines the test can read. */
function capturedLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

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
    const config = loadConfig({ flags: { listen: [`unix://${join(dir, 'd.sock')}`], policies: [dir], threads: 1, 'admin.listen': '127.0.0.1:0' } });
    daemon = await startDaemon(config, logger);
    client = new PolicyEngineClient(daemon.addresses[0]!);
  });
  after(async () => {
    client.close();
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads the directory at start and is ready', async () => {
    assert.deepEqual((await client.listPolicies()).policies.map((p) => p.name), ['simple-validation']);
    assert.equal(await checkHealth(daemon.addresses[0]!, SERVICE_NAME), 'SERVING');
    const ready = await fetch(`http://${daemon.adminAddress}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal((await fetch(`http://${daemon.adminAddress}/healthz`)).status, 200);
  });

  it('exports Prometheus metrics on the admin port', async () => {
    await simpleEval(client);
    await assert.rejects(client.evaluate({ policy: 'simple-validation', material: { content: Buffer.from('{'), kind: MaterialKind.EVIDENCE } }));
    const text = await (await fetch(`http://${daemon.adminAddress}/metrics`)).text();
    assert.match(text, /policyd_evaluations_total\{policy="simple-validation",outcome="ok"\} 1/);
    assert.match(text, /policyd_evaluations_total\{policy="simple-validation",outcome="INVALID_MATERIAL"\} 1/);
    assert.match(text, /policyd_evaluation_duration_seconds_count\{policy="simple-validation"\} 2/);
    assert.match(text, /policyd_policies_loaded 1/);
    assert.match(text, /policyd_queue_depth 0/);
    assert.match(text, /policyd_pool_threads 1/);
  });

  it('logs guest logs and one decision line with policy, digest and evaluation id', async () => {
    const res = await simpleEval(client, 'logged');
    const mine = lines.filter((l) => l.evaluationId === res.evaluationId);
    assert.deepEqual(mine.map((l) => l.msg), ['Validating message with max length: 100', 'Validation passed for message: logged', 'decision']);
    assert.equal(mine[2]!.digest, res.policyDigest);
    assert.equal(mine[2]!.violations, 0);
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

    writeFileSync(file, 'apiVersion: chainloop.dev/v1\nkind: Policy\nmetadata: {name: simple-validation}\nspec: {policies: [{ref: gone.wasm}]}\n');
    await eventually('the reload failure to be logged', async () => lines.find((l) => l.msg === 'policy reload failed; the last good version keeps serving' && l.file === file));
    assert.equal((await client.listPolicies()).policies[0]!.digest, changed.digest);
    assert.deepEqual((await simpleEval(client)).result!.violations, []);

    copyExample('sbom', dir);
    await eventually('the added policy', async () => ((await client.listPolicies()).policies.length === 2 ? true : undefined));
    unlinkSync(join(dir, 'sbom', 'policy.yaml'));
    await eventually('the removed policy', async () => ((await client.listPolicies()).policies.map((p) => p.name).join() === 'simple-validation' ? true : undefined));
    await assert.rejects(
      client.evaluate({ policy: 'sbom-validation', material: { content: exampleMaterial('sbom', 'pass.json'), kind: MaterialKind.SBOM_CYCLONEDX_JSON } }),
      grpcError(status.NOT_FOUND, 'POLICY_NOT_FOUND'),
    );
  });
});

describe('serve: listeners and authentication', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'policyd-tls-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const quiet = pino({ level: 'silent' });

  it('refuses plaintext TCP on a non-loopback address unless told to accept it', async () => {
    await assert.rejects(startDaemon(loadConfig({ flags: { listen: ['0.0.0.0:0'], threads: 1 } }), quiet), /refusing plaintext gRPC on 0\.0\.0\.0:0.*--tls-insecure/);
    const insecure = await startDaemon(loadConfig({ flags: { listen: ['0.0.0.0:0'], threads: 1, 'tls.insecure': true } }), quiet);
    await insecure.stop();
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

  it('requires a bearer token on the policy service when tokens are configured; health stays open', async () => {
    const token = 'a-long-enough-secret-token';
    const d = await startDaemon(loadConfig({ flags: { listen: ['127.0.0.1:0'], threads: 1, 'auth.tokens': [token], policies: [example('simple')] } }), quiet);
    const anonymous = new PolicyEngineClient(d.addresses[0]!);
    const wrong = new PolicyEngineClient(d.addresses[0]!, { token: 'another-long-enough-token' });
    const right = new PolicyEngineClient(d.addresses[0]!, { token });
    try {
      await assert.rejects(anonymous.listPolicies(), grpcError(status.UNAUTHENTICATED, 'UNAUTHENTICATED', /missing or unknown bearer token/));
      await assert.rejects(simpleEval(wrong), grpcError(status.UNAUTHENTICATED, 'UNAUTHENTICATED'));
      assert.deepEqual((await simpleEval(right)).result!.violations, []);
      assert.equal(await checkHealth(d.addresses[0]!, SERVICE_NAME), 'SERVING');
    } finally {
      for (const c of [anonymous, wrong, right]) c.close();
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
    const server = new PolicyServer(engine, { listen: ['127.0.0.1:0'], tls: { ...serving, clientCa: clientPki.ca, refreshMs: 100 } });
    const [address] = await server.listen();
    server.markReady();
    const clientFor = (ca: string, withCert: boolean) =>
      new PolicyEngineClient(address!.replace('127.0.0.1', 'localhost'), {
        credentials: credentials.createSsl(readFileSync(ca), withCert ? readFileSync(clientPki.key) : null, withCert ? readFileSync(clientPki.cert) : null),
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
    } finally {
      trusted.close();
      anonymous.close();
      await server.shutdown(0);
    }
  });
});

describe('serve: drain under load', () => {
  it('finishes every accepted evaluation when stopped, refuses the rest at once, and loses none', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'policyd-drain-'));
    const d = await startDaemon(loadConfig({ flags: { listen: [`unix://${join(dir, 'd.sock')}`], threads: 2, policies: [example('sbom')], graceMs: 20_000 } }), pino({ level: 'silent' }));
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
            outcomes.push(res.result!.skipped === false && res.result!.violations.length === 0 ? (sentWhileStopping ? 'ok-late' : 'ok') : 'wrong');
          } catch (err) {
            const code = (err as { code?: number }).code;
            // Refused at once (draining, or load shedding) is an answer, not a loss.
            outcomes.push(code === status.UNAVAILABLE ? 'unavailable' : code === status.RESOURCE_EXHAUSTED ? 'refused' : `error ${(err as Error).message}`);
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
    const counts = outcomes.reduce<Record<string, number>>((acc, o) => ({ ...acc, [o]: (acc[o] ?? 0) + 1 }), {});
    assert.equal(outcomes.length, 16 * 40, 'every request got an answer');
    assert.deepEqual(Object.keys(counts).filter((k) => !['ok', 'ok-late', 'unavailable', 'refused'].includes(k)), [], JSON.stringify(counts));
    assert.ok((counts.ok ?? 0) >= 50 && (counts.unavailable ?? 0) > 0, JSON.stringify(counts));
  });
});
