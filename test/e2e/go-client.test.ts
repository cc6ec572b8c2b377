import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.js';
import { startDaemon, type RunningDaemon } from '../../src/daemon/daemon.js';
import { makePki } from '../helpers/certificates.js';
import { ROOT, example } from '../helpers/paths.js';

const exec = promisify(execFile);
const CONSUMER = `${ROOT}build/go/policyd-consumer`;
const STUBS = 'clients/go/policyengine/v1';
const quiet = pino({ level: 'silent' });

describe('the Go client module (clients/go)', () => {
  let dir: string;
  let daemon: RunningDaemon;
  let secured: RunningDaemon;
  const token = 'go-client-test-token-0123456789';
  let pki: { server: ReturnType<typeof makePki>; client: ReturnType<typeof makePki> };
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'policyd-go-'));
    daemon = await startDaemon(loadConfig({ flags: { listen: [`unix://${join(dir, 'd.sock')}`, '127.0.0.1:0'], threads: 1 } }), quiet);
    pki = { server: makePki(dir, 'server'), client: makePki(dir, 'client', 'control-plane') };
    secured = await startDaemon(
      loadConfig({
        flags: {
          listen: ['127.0.0.1:0'],
          threads: 1,
          'auth.adminTokens': [token],
          'tls.cert': pki.server.cert,
          'tls.key': pki.server.key,
          'tls.clientCa': pki.client.ca,
        },
      }),
      quiet,
    );
  });
  after(async () => {
    await Promise.all([daemon.stop(), secured.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('has committed stubs identical to what `make gen` generates from proto/', async () => {
    const out = join(dir, 'gen');
    await exec('buf', ['generate', '--template', 'buf.gen.go.yaml', '-o', out], {
      cwd: ROOT,
      env: { ...process.env, PATH: `${ROOT}build/bin:${ROOT}node_modules/.bin:${process.env.PATH}` },
    });
    const files = readdirSync(join(ROOT, STUBS)).sort();
    assert.deepEqual(readdirSync(join(out, STUBS)).sort(), files);
    for (const file of files) {
      assert.ok(
        readFileSync(join(out, STUBS, file)).equals(readFileSync(join(ROOT, STUBS, file))),
        `${STUBS}/${file} differs from proto/: run make gen and commit`,
      );
    }
  });

  it("passes the module's own tests against live daemons (unix socket; TCP with mTLS and a token)", async () => {
    const { stdout } = await exec('go', ['test', '-count=1', '-v', './...'], {
      cwd: `${ROOT}clients/go`,
      env: {
        ...process.env,
        POLICYD_TEST_ADDR: daemon.addresses[0]!,
        POLICYD_TEST_ROOT: ROOT,
        POLICYD_TEST_SECURE_ADDR: secured.addresses[0]!.replace('127.0.0.1', 'localhost'),
        POLICYD_TEST_SECURE_CA: pki.server.ca,
        POLICYD_TEST_CLIENT_CERT: pki.client.cert,
        POLICYD_TEST_CLIENT_KEY: pki.client.key,
        POLICYD_TEST_TOKEN: token,
      },
    });
    // Every test ran: none skipped for want of a daemon.
    for (const name of [
      'TestLoadAndEvaluate',
      'TestErrorsAreTyped',
      'TestEvaluateOrLoadReloadsOnce',
      'TestDeadlineReachesTheDaemon',
      'TestMutualTLSAndToken',
    ]) {
      assert.match(stdout, new RegExp(`--- PASS: ${name} `));
    }
    assert.doesNotMatch(stdout, /--- SKIP/);
  });

  describe('imported from another module (test/fixtures/go-consumer, as after `go get`)', () => {
    const run = (address: string, ...args: string[]) => exec(CONSUMER, ['-addr', address, ...args], { cwd: ROOT });

    it('loads a policy and evaluates a material by digest over a unix socket', async () => {
      const { stdout } = await run(
        daemon.addresses[0]!,
        '-policy',
        example('sbom'),
        '-material',
        example('sbom', 'materials/fail.json'),
        '-kind',
        'SBOM_CYCLONEDX_JSON',
      );
      const out = JSON.parse(stdout);
      assert.equal(out.policy, 'sbom-validation');
      assert.match(out.digest, /^sha256:[0-9a-f]{64}$/);
      assert.deepEqual(out.violations, ["component 'left-pad' missing version", 'component at index 2 missing name']);
      assert.equal(out.skipped, false);
    });

    it('passes args over TCP', async () => {
      const { stdout } = await run(
        daemon.addresses[1]!,
        '-policy',
        example('simple'),
        '-material',
        example('simple', 'materials/pass.json'),
        '-args',
        'max_length=2',
      );
      assert.deepEqual(JSON.parse(stdout).violations, ['message too long: 5 characters (max 2)']);
    });

    it('reports the status code and ErrorInfo reason of a failure', async () => {
      const failed = await run(
        daemon.addresses[0]!,
        '-policy',
        example('simple'),
        '-material',
        `${ROOT}README.md`,
        '-kind',
        'EVIDENCE',
      ).then(
        () => assert.fail('expected the example to fail'),
        (err: { code: number; stderr: string }) => err,
      );
      assert.equal(failed.code, 1);
      assert.match(
        failed.stderr,
        /^error: InvalidArgument \(INVALID_MATERIAL\): failed to parse input: EVIDENCE material is not valid JSON/,
      );
    });
  });
});
