import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { pino } from 'pino';
import { PolicyEngineClient } from '../../clients/typescript/src/index.js';
import { loadConfig } from '../../src/config/load.js';
import { startDaemon } from '../../src/daemon/daemon.js';
import { MaterialKind } from '../../src/gen/policyengine/v1/engine_pb.js';
import { grpcError } from '../helpers/daemon.js';
import { exampleRequest } from '../helpers/documents.js';
import { example, fixture } from '../helpers/paths.js';
import { killProcess, serveProcess } from '../helpers/serve-process.js';

/** `wasm-policyd serve` with a state directory and a file root in `dir`. */
const serve = (dir: string) => serveProcess(dir, ['--state-dir', join(dir, 'state'), '--file-root', join(dir, 'files')]);
const kill = killProcess;

const listed = async (c: PolicyEngineClient) => (await c.listPolicies()).policies.map((p) => `${p.name} ${p.digest}`).sort();

describe('the state directory: nothing loaded through the API is lost when the daemon is killed', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'policyd-state-'));
    mkdirSync(join(dir, 'files', 'sbom'), { recursive: true });
    copyFileSync(example('sbom'), join(dir, 'files', 'sbom', 'policy.yaml'));
    copyFileSync(example('sbom', 'policy.wasm'), join(dir, 'files', 'sbom', 'policy.wasm'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('restores every policy after SIGKILL, by digest, without the files or requests it came from; unloaded ones stay gone', async () => {
    const first = await serve(dir);
    const simple = exampleRequest(example('simple'));
    try {
      await first.client.loadPolicy({ source: { case: 'policyDocument', value: simple.document }, scripts: simple.scripts });
      await first.client.loadPolicy({
        source: { case: 'wasmModule', value: fixture('echo') },
        name: 'echo',
        kinds: [MaterialKind.EVIDENCE],
      });
      await first.client.loadPolicy({ source: { case: 'ref', value: 'file://sbom/policy.yaml' }, limits: { timeoutMs: 1234 } });
      await first.client.loadPolicy({ source: { case: 'wasmModule', value: fixture('echo') }, name: 'gone', kinds: [MaterialKind.SARIF] });
      await first.client.unloadPolicy({ policy: 'gone' });
    } finally {
      await kill(first);
    }
    const before = ['echo', 'sbom-validation', 'simple-validation'];
    rmSync(join(dir, 'files', 'sbom'), { recursive: true }); // the ref's files are gone: the state has the bytes

    const second = await serve(dir);
    try {
      const now = await listed(second.client);
      assert.deepEqual(
        now.map((l) => l.split(' ')[0]),
        before,
      );
      const sbom = (await second.client.listPolicies()).policies.find((p) => p.name === 'sbom-validation')!;
      assert.equal(sbom.limits?.timeoutMs, 1234, 'limits are restored too');
      const res = await second.client.evaluate({
        policy: 'simple-validation',
        material: { content: Buffer.from('{"message":"ok"}'), kind: MaterialKind.EVIDENCE },
      });
      assert.deepEqual(res.result!.violations, []);
      assert.match(second.log(), /"restored":3,"failed":0/);
    } finally {
      await kill(second);
    }
  });

  it('refuses a damaged record or blob and restores the rest', async () => {
    const blobs = join(dir, 'state', 'blobs');
    const echo = readdirSync(blobs).find((f) => readFileSync(join(blobs, f)).equals(fixture('echo')))!;
    writeFileSync(join(blobs, echo), Buffer.concat([fixture('echo'), Buffer.from([0])]));
    const third = await serve(dir);
    try {
      assert.deepEqual(
        (await listed(third.client)).map((l) => l.split(' ')[0]),
        ['sbom-validation', 'simple-validation'],
      );
      assert.match(third.log(), /does not have its digest \(the file was changed or damaged\)/);
      assert.match(third.log(), /"restored":2,"failed":1/);
    } finally {
      await kill(third);
    }
  });
});

describe('the state directory under SIGKILL during LoadPolicy', () => {
  it('is never left half-written: every restart restores what was fully saved and fails nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'policyd-state-kill-'));
    mkdirSync(join(dir, 'files'));
    const simple = exampleRequest(example('simple'));
    try {
      for (let round = 0; round < 5; round++) {
        const daemon = await serve(dir);
        assert.match(daemon.log(), /"failed":0/);
        // A new version of the same name each round, killed after a varying delay.
        const document = Buffer.from(simple.document.toString().replace(/description: .*/, `description: round ${round}`));
        const load = daemon.client
          .loadPolicy({ source: { case: 'policyDocument', value: document }, scripts: simple.scripts })
          .catch(() => undefined);
        await new Promise((r) => setTimeout(r, round * 15));
        await kill(daemon);
        await load;
      }
      const last = await serve(dir);
      try {
        assert.match(last.log(), /"failed":0/);
        assert.ok((await listed(last.client)).length <= 1);
      } finally {
        await kill(last);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the state directory when it cannot be written', () => {
  it('answers UNAVAILABLE STATE_NOT_SAVED, keeps serving, and saves on a retry once the directory is fixed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'policyd-state-broken-'));
    mkdirSync(join(dir, 'state'));
    writeFileSync(join(dir, 'state', 'blobs'), 'not a directory');
    const d = await startDaemon(
      loadConfig({ flags: { listen: [`unix://${join(dir, 'd.sock')}`], threads: 1, stateDir: join(dir, 'state') } }),
      pino({ level: 'silent' }),
    );
    const client = new PolicyEngineClient(d.addresses[0]!);
    const load = { source: { case: 'wasmModule' as const, value: fixture('echo') }, name: 'echo', kinds: [MaterialKind.EVIDENCE] };
    try {
      await assert.rejects(
        client.loadPolicy(load),
        grpcError(status.UNAVAILABLE, 'STATE_NOT_SAVED', /loaded on this replica but could not be saved .* would not survive a restart/),
      );
      const res = await client.evaluate({ policy: 'echo', material: { content: Buffer.from('{}'), kind: MaterialKind.EVIDENCE } });
      assert.equal(res.policyName, 'echo');
      rmSync(join(dir, 'state', 'blobs'));
      assert.equal((await client.loadPolicy(load)).alreadyLoaded, true);
      assert.deepEqual(readdirSync(join(dir, 'state', 'policies')), ['echo.json']);
    } finally {
      client.close();
      await d.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
