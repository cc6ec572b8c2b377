import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { EngineOptions } from '../../src/engine/policy-engine.js';
import { MaterialKind } from '../../src/gen/policyengine/v1/engine_pb.js';
import { RegistryClient } from '../../src/oci/registry-client.js';
import { SignatureVerifier } from '../../src/oci/signatures.js';
import { grpcError, startDaemon, type Daemon } from '../helpers/daemon.js';
import { exampleRequest } from '../helpers/documents.js';
import { CLI, ROOT, example, exampleMaterial } from '../helpers/paths.js';
import { COSIGN, ORAS, startRegistry, tool, type Registry } from '../helpers/registry.js';
import { killProcess, serveProcess } from '../helpers/serve-process.js';

const licensesFail = () => exampleMaterial('cyclonedx-licenses', 'fail.json');
const sbom = MaterialKind.SBOM_CYCLONEDX_JSON;

/** `wasm-policyd push`; returns the pinned ref it prints last. */
function push(policy: string, ref: string, extra: string[] = [], env: Record<string, string> = {}): string {
  const out = execFileSync(process.execPath, [CLI, 'push', '--plain-http', '-p', policy, ref, ...extra], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  return out.trim().split('\n').at(-1)!;
}

function pemKeys(dir: string, name: string): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const privatePem = join(dir, `${name}.pem`);
  const publicPem = join(dir, `${name}.pub`);
  writeFileSync(privatePem, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(publicPem, publicKey.export({ type: 'spki', format: 'pem' }));
  return { privatePem, publicPem };
}

function ociOptions(registry: Registry, extra: Partial<EngineOptions> = {}, onDemand: string[] = []): EngineOptions {
  return {
    oci: {
      client: new RegistryClient({
        plainHttp: [registry.host],
        allowPrivateNetwork: true,
        dockerConfig: registry.dockerConfig ?? join(registry.dir, 'no-config.json'),
        requestTimeoutMs: 10_000,
      }),
      onDemand,
    },
    ...extra,
  };
}

describe('policies in an OCI registry (Debian docker-registry on loopback, oras and cosign as second clients)', () => {
  let registry: Registry;
  let dir: string;
  let daemon: Daemon | undefined;
  let licenses: string;
  before(async () => {
    registry = await startRegistry();
    dir = mkdtempSync(join(tmpdir(), 'policyd-oci-'));
    licenses = push(example('cyclonedx-licenses'), `oci://${registry.host}/policies/licenses:v1`);
  });
  after(async () => {
    await daemon?.stop();
    await registry.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const use = async (options: EngineOptions) => {
    await daemon?.stop();
    daemon = await startDaemon(options);
    return daemon;
  };

  it('push writes an artifact oras reads back file for file, and the same policy always gets the same digest', () => {
    assert.match(licenses, new RegExp(`^oci://${registry.host}/policies/licenses@sha256:[0-9a-f]{64}$`));
    assert.equal(push(example('cyclonedx-licenses'), `oci://${registry.host}/policies/licenses:again`), licenses.replace(':again', ''));
    const out = join(dir, 'oras-pull');
    mkdirSync(out);
    tool(ORAS, ['pull', '--plain-http', '-o', out, licenses.slice('oci://'.length)]);
    assert.deepEqual(readFileSync(join(out, 'policy.yaml')), readFileSync(example('cyclonedx-licenses')));
    assert.deepEqual(readFileSync(join(out, 'policy.wasm')), readFileSync(example('cyclonedx-licenses', 'policy.wasm')));
    const manifest = JSON.parse(tool(ORAS, ['manifest', 'fetch', '--plain-http', licenses.slice('oci://'.length)]));
    assert.equal(manifest.artifactType, 'application/vnd.wasm-policyd.policy.v1');
    assert.deepEqual(
      manifest.layers.map((l: { mediaType: string }) => l.mediaType),
      ['application/vnd.wasm-policyd.policy.document.v1+yaml', 'application/vnd.wasm.content.layer.v1+wasm'],
    );
  });

  it('LoadPolicy with an oci:// ref (tag or digest) evaluates as the same policy loaded from files, named by the manifest digest', async () => {
    const d = await use(ociOptions(registry));
    const local = exampleRequest(example('cyclonedx-licenses'));
    const fromFiles = await d.tcp.loadPolicy({ source: { case: 'policyDocument', value: local.document }, scripts: local.scripts });
    const expected = await d.tcp.evaluate({ policy: fromFiles.policy!.digest, material: { content: licensesFail(), kind: sbom } });
    await d.tcp.unloadPolicy({ policy: fromFiles.policy!.digest });
    const byTag = await d.tcp.loadPolicy({ source: { case: 'ref', value: `oci://${registry.host}/policies/licenses:v1` } });
    assert.equal(byTag.policy!.digest, licenses.split('@')[1]);
    const byDigest = await d.unix.loadPolicy({ source: { case: 'ref', value: licenses } });
    assert.equal(byDigest.alreadyLoaded, true);
    const res = await d.unix.evaluate({ policy: 'cyclonedx-licenses', material: { content: licensesFail(), kind: sbom } });
    assert.deepEqual(res.result, expected.result);
    assert.ok(res.result!.violations.length > 0);
  });

  it('loads an artifact oras pushed by hand with the documented media types', async () => {
    const files = join(dir, 'by-oras');
    mkdirSync(files);
    writeFileSync(join(files, 'policy.yaml'), readFileSync(example('simple')));
    writeFileSync(join(files, 'policy.wasm'), readFileSync(example('simple', 'policy.wasm')));
    execFileSync(
      ORAS,
      [
        'push',
        '--plain-http',
        '--artifact-type',
        'application/vnd.wasm-policyd.policy.v1',
        `${registry.host}/policies/by-oras:v1`,
        'policy.yaml:application/vnd.wasm-policyd.policy.document.v1+yaml',
        'policy.wasm:application/vnd.wasm.content.layer.v1+wasm',
      ],
      { cwd: files, stdio: 'ignore' },
    );
    const d = await use(ociOptions(registry));
    const loaded = await d.tcp.loadPolicy({ source: { case: 'ref', value: `oci://${registry.host}/policies/by-oras:v1` } });
    assert.equal(loaded.policy!.name, 'simple-validation');
  });

  it('refuses what is not there, not a policy, or not a valid ref, with the status a caller can act on', async () => {
    const d = await use(ociOptions(registry));
    const load = (ref: string) => d.tcp.loadPolicy({ source: { case: 'ref', value: ref } });
    await assert.rejects(
      load(`oci://${registry.host}/policies/licenses:v9`),
      grpcError(status.NOT_FOUND, 'ARTIFACT_NOT_FOUND', /does not exist.*push it/),
    );
    await assert.rejects(load(`oci://${registry.host}/policies/nothing-here:v1`), grpcError(status.NOT_FOUND, 'ARTIFACT_NOT_FOUND'));
    writeFileSync(join(dir, 'notes.txt'), 'not a policy');
    execFileSync(ORAS, ['push', '--plain-http', `${registry.host}/policies/notes:v1`, 'notes.txt:text/plain'], {
      cwd: dir,
      stdio: 'ignore',
    });
    await assert.rejects(
      load(`oci://${registry.host}/policies/notes:v1`),
      grpcError(status.INVALID_ARGUMENT, 'INVALID_ARTIFACT', /not a wasm-policyd policy artifact.*artifact type/),
    );
    await assert.rejects(
      load(`oci://${registry.host}/Policies/UPPER:v1`),
      grpcError(status.INVALID_ARGUMENT, 'UNSUPPORTED_REF', /lowercase/),
    );
    await assert.rejects(load('oci://policies-without-registry'), grpcError(status.INVALID_ARGUMENT, 'UNSUPPORTED_REF', /registry/));
    await assert.rejects(
      load('oci://127.0.0.1:1/policies/x:v1'),
      grpcError(status.UNAVAILABLE, 'REGISTRY_UNAVAILABLE', /cannot be reached/),
    );
    // The daemon still serves.
    assert.equal((await d.tcp.listPolicies()).policies.length, 0);
  });

  it('keeps the SSRF guard for registries unless oci.allowPrivateNetwork is set', async () => {
    const guarded = ociOptions(registry);
    guarded.oci!.client = new RegistryClient({ plainHttp: [registry.host], allowPrivateNetwork: false, requestTimeoutMs: 10_000 });
    const d = await use(guarded);
    await assert.rejects(
      d.tcp.loadPolicy({ source: { case: 'ref', value: licenses } }),
      grpcError(status.INVALID_ARGUMENT, 'UNSUPPORTED_REF', /private address 127\.0\.0\.1.*oci\.allowPrivateNetwork/),
    );
  });

  it('evaluates a digest it has never loaded by pulling it from the on-demand repositories, once, by digest only', async () => {
    const d = await use(
      ociOptions(registry, {}, [`oci://${registry.host}/policies/elsewhere`, `oci://${registry.host}/policies/licenses`]),
    );
    const digest = licenses.split('@')[1]!;
    // Another version serves the name: the on-demand one must not replace it.
    const simple = exampleRequest(example('simple'));
    await d.tcp.loadPolicy({ source: { case: 'policyDocument', value: simple.document }, scripts: simple.scripts });
    const results = await Promise.all(
      Array.from({ length: 8 }, () => d.tcp.evaluate({ policy: digest, material: { content: licensesFail(), kind: sbom } })),
    );
    for (const r of results) assert.equal(r.policyDigest, digest);
    assert.ok(results[0]!.result!.violations.length > 0);
    const listed = (await d.tcp.listPolicies()).policies.map((p) => `${p.name} ${p.digest}`).sort();
    assert.equal(listed.length, 2);
    assert.ok(listed.includes(`cyclonedx-licenses ${digest}`));
    await assert.rejects(
      d.tcp.evaluate({ policy: `sha256:${'0'.repeat(64)}`, material: { content: licensesFail(), kind: sbom } }),
      grpcError(status.NOT_FOUND, 'POLICY_NOT_FOUND', /none of .*policies\/elsewhere.*has it/),
    );
    await assert.rejects(
      d.tcp.evaluate({ policy: 'cyclonedx-licenses', material: { content: licensesFail(), kind: sbom } }),
      grpcError(status.NOT_FOUND, 'POLICY_NOT_FOUND'),
    );
    // Loaded by name afterwards, the same version serves its name too.
    await d.tcp.loadPolicy({ source: { case: 'ref', value: licenses } });
    const byName = await d.tcp.evaluate({ policy: 'cyclonedx-licenses', material: { content: licensesFail(), kind: sbom } });
    assert.equal(byName.policyDigest, digest);
  });

  it('uses the credentials of a Docker config file, and says what to do without them', async () => {
    const locked = await startRegistry({ username: 'policy-bot', password: 'correct horse battery' });
    try {
      const pushed = push(example('simple'), `oci://${locked.host}/policies/simple:v1`, ['--docker-config', locked.dockerConfig!]);
      const d = await use(ociOptions(locked));
      assert.equal((await d.tcp.loadPolicy({ source: { case: 'ref', value: pushed } })).policy!.name, 'simple-validation');
      const anonymous = await use(ociOptions({ ...locked, dockerConfig: undefined }));
      await assert.rejects(
        anonymous.tcp.loadPolicy({ source: { case: 'ref', value: pushed } }),
        grpcError(status.FAILED_PRECONDITION, 'REGISTRY_DENIED', /refused access.*HTTP 401.*log in/),
      );
    } finally {
      await locked.stop();
    }
  });

  describe('signatures', () => {
    let keys: { privatePem: string; publicPem: string };
    let other: { privatePem: string; publicPem: string };
    let signed: string;
    let unsigned: string;
    const verifying = (publicPems: string[], allowUnsigned = false) =>
      ociOptions(registry, {
        signatures: {
          verifier: new SignatureVerifier(publicPems.map((f) => ({ name: f, key: createPublicKey(readFileSync(f)) }))),
          allowUnsigned,
        },
      });
    before(() => {
      keys = pemKeys(dir, 'release');
      other = pemKeys(dir, 'other');
      signed = push(example('sbom'), `oci://${registry.host}/policies/sbom:signed`, ['--sign-key', keys.privatePem]);
      unsigned = push(example('simple'), `oci://${registry.host}/policies/simple:unsigned`);
    });

    it('loads a policy signed with a configured key, and refuses unsigned, wrongly signed and unsignable sources', async () => {
      const d = await use(verifying([other.publicPem, keys.publicPem]));
      assert.equal((await d.tcp.loadPolicy({ source: { case: 'ref', value: signed } })).policy!.name, 'sbom-validation');
      await assert.rejects(
        d.tcp.loadPolicy({ source: { case: 'ref', value: unsigned } }),
        grpcError(status.FAILED_PRECONDITION, 'SIGNATURE_NOT_VERIFIED', /is not signed.*push --sign-key/),
      );
      const simple = exampleRequest(example('simple'));
      await assert.rejects(
        d.tcp.loadPolicy({ source: { case: 'policyDocument', value: simple.document }, scripts: simple.scripts }),
        grpcError(status.FAILED_PRECONDITION, 'SIGNATURE_NOT_VERIFIED', /only signed policies from an OCI registry.*allowUnsigned/),
      );
      const wrongKey = await use(verifying([other.publicPem]));
      await assert.rejects(
        wrongKey.tcp.loadPolicy({ source: { case: 'ref', value: signed } }),
        grpcError(status.FAILED_PRECONDITION, 'SIGNATURE_NOT_VERIFIED', /no signature by a key this daemon trusts/),
      );
      const lenient = await use(verifying([keys.publicPem], true));
      await lenient.tcp.loadPolicy({ source: { case: 'policyDocument', value: simple.document }, scripts: simple.scripts });
      await assert.rejects(
        lenient.tcp.loadPolicy({ source: { case: 'ref', value: unsigned } }),
        grpcError(status.FAILED_PRECONDITION, 'SIGNATURE_NOT_VERIFIED'),
      );
    });

    it('verifies what cosign signed, and cosign verifies what push signed', async () => {
      const password = { COSIGN_PASSWORD: 'test-only' };
      tool(COSIGN, ['generate-key-pair', '--output-key-prefix', join(dir, 'cosign')], password);
      const target = unsigned.slice('oci://'.length);
      tool(
        COSIGN,
        [
          'sign',
          '--key',
          join(dir, 'cosign.key'),
          '--tlog-upload=false',
          '--use-signing-config=false',
          '--allow-http-registry',
          '--yes',
          target,
        ],
        password,
      );
      const d = await use(verifying([join(dir, 'cosign.pub')]));
      assert.equal((await d.tcp.loadPolicy({ source: { case: 'ref', value: unsigned } })).policy!.name, 'simple-validation');
      const verified = tool(COSIGN, [
        'verify',
        '--key',
        keys.publicPem,
        '--insecure-ignore-tlog',
        '--allow-http-registry',
        signed.slice('oci://'.length),
      ]);
      assert.equal(JSON.parse(verified)[0].critical.image['docker-manifest-digest'], signed.split('@')[1]);
      assert.throws(() =>
        tool(COSIGN, [
          'verify',
          '--key',
          other.publicPem,
          '--insecure-ignore-tlog',
          '--allow-http-registry',
          signed.slice('oci://'.length),
        ]),
      );
    });
  });

  it('serve pulls configured oci:// policies at start, keeps them in the state directory, and restores them with the registry gone', async () => {
    const stateDir = join(dir, 'serve');
    mkdirSync(stateDir);
    const flags = ['--oci-plain-http', registry.host, '--oci-allow-private-network', '--state-dir', join(stateDir, 'state')];
    const first = await serveProcess(stateDir, [...flags, '--policy', `oci://${registry.host}/policies/licenses:v1`]);
    try {
      await first.client.loadPolicy({ source: { case: 'ref', value: `oci://${registry.host}/policies/sbom:signed` } });
    } finally {
      await killProcess(first);
    }
    const unreachable = ['--oci-plain-http', '127.0.0.1:1', '--oci-allow-private-network', '--state-dir', join(stateDir, 'state')];
    const second = await serveProcess(stateDir, unreachable);
    try {
      const names = (await second.client.listPolicies()).policies.map((p) => p.name);
      assert.deepEqual(names, ['sbom-validation']);
    } finally {
      await killProcess(second);
    }
    // A configured ref that cannot be pulled stops the start, saying why.
    assert.throws(
      () =>
        execFileSync(
          process.execPath,
          [CLI, 'serve', '--listen', `unix://${join(stateDir, 'x.sock')}`, ...unreachable, '--policy', 'oci://127.0.0.1:1/policies/x:v1'],
          {
            cwd: ROOT,
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        ),
      (err: { stderr: Buffer }) => /registry 127\.0\.0\.1:1 cannot be used.*cannot be reached/.test(err.stderr.toString()),
    );
  });
});
