import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PolicydError } from '../../src/errors/policyd-error.js';
import { MaterialKind } from '../../src/gen/policyengine/v1/engine_pb.js';
import { packPolicy } from '../../src/oci/policy-artifact.js';
import { SignatureVerifier } from '../../src/oci/signatures.js';
import { sha256 } from '../../src/policies/digest.js';
import { type LoaderOptions, type PolicySource, resolvePolicy } from '../../src/policies/loader.js';
import { fixture } from '../helpers/paths.js';

const wasm = () => fixture('echo');
const document = (script: string) =>
  Buffer.from(
    `apiVersion: workflowcontract.chainloop.dev/v1\nkind: Policy\nmetadata:\n  name: doc\nspec:\n  policies:\n    - kind: EVIDENCE\n      ${script}\n`,
  );
const noNetwork: LoaderOptions = { fetchRemote: () => Promise.reject(new Error('no network in this test')) };

/** Resolves, expecting a refusal with `reason` and a message matching `why`. */
async function refused(source: PolicySource, reason: string, why: RegExp, options: LoaderOptions = noNetwork): Promise<void> {
  await assert.rejects(resolvePolicy(source, options), (err: unknown) => {
    assert.ok(err instanceof PolicydError, String(err));
    assert.equal(err.reason, reason, err.message);
    assert.match(err.message, why);
    return true;
  });
}

describe('the loader: where a policy comes from, and what makes its digest', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'policyd-loader-'));
    mkdirSync(join(root, 'files', 'real', 'p'), { recursive: true });
    writeFileSync(join(root, 'files', 'real', 'p', 'policy.yaml'), document('ref: policy.wasm'));
    writeFileSync(join(root, 'files', 'real', 'p', 'policy.wasm'), wasm());
    // As the kubelet mounts a ConfigMap: links inside the root to real files inside the root.
    symlinkSync(join(root, 'files', 'real', 'p'), join(root, 'files', 'p'));
    writeFileSync(join(root, 'outside.yaml'), document('ref: policy.wasm'));
    symlinkSync(join(root, 'outside.yaml'), join(root, 'files', 'link.yaml'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('a bare module: its digest is the module’s, it applies to every kind unless told', async () => {
    const r = await resolvePolicy({ type: 'module', bytes: wasm(), name: 'echo', kinds: [] }, noNetwork);
    assert.equal(r.digest, sha256(wasm()));
    assert.deepEqual(
      r.scripts.map((s) => s.kind),
      [MaterialKind.UNSPECIFIED],
    );
  });

  it('a document with an embedded script is named by the document’s digest (Chainloop’s reference digest)', async () => {
    const bytes = document(`embedded: ${wasm().toString('base64')}`);
    const r = await resolvePolicy({ type: 'document', bytes }, noNetwork);
    assert.equal(r.digest, sha256(bytes));
  });

  it('a document whose script travels beside it folds the script’s digest in, and replays without reading anything', async () => {
    const bytes = document('ref: policy.wasm');
    const r = await resolvePolicy({ type: 'document', bytes, scripts: { 'policy.wasm': wasm() } }, noNetwork);
    assert.notEqual(r.digest, sha256(bytes));
    const again = await resolvePolicy(r.replay, noNetwork);
    assert.equal(again.digest, r.digest);
    const other = await resolvePolicy({ type: 'document', bytes, scripts: { 'policy.wasm': fixture('spin') } }, noNetwork);
    assert.notEqual(other.digest, r.digest, 'another script is another policy');
  });

  it('an OCI artifact is named by its manifest digest, each blob checked, and replays as itself', async () => {
    const packed = packPolicy({
      document: { title: 'policy.yaml', bytes: document('ref: policy.wasm') },
      scripts: { 'policy.wasm': wasm() },
    });
    const blobs = Object.fromEntries(packed.blobs);
    const source = { type: 'artifact' as const, ref: 'oci://r/p@x', manifest: packed.manifest, blobs, signatures: [] };
    const r = await resolvePolicy(source, noNetwork);
    assert.equal(r.digest, packed.digest);
    assert.deepEqual(r.replay, source);
    const wasmDigest = sha256(wasm());
    await refused({ ...source, blobs: { ...blobs, [wasmDigest]: fixture('spin') } }, 'INVALID_ARTIFACT', /does not have its digest/);
  });

  const cases: { name: string; source: PolicySource; reason: string; why: RegExp; options?: LoaderOptions }[] = [
    {
      name: 'a module named against the rules',
      source: { type: 'module', bytes: wasm(), name: 'Echo_1', kinds: [] },
      reason: 'INVALID_REQUEST',
      why: /lowercase letters, digits and dashes/,
    },
    {
      name: 'a script that is neither embedded nor sent',
      source: { type: 'document', bytes: document('ref: policy.wasm') },
      reason: 'SCRIPT_NOT_FOUND',
      why: /send its bytes in LoadPolicyRequest.scripts under the key "policy.wasm"/,
    },
    {
      name: 'a script whose pin does not match',
      source: { type: 'document', bytes: document(`ref: policy.wasm@sha256:${'0'.repeat(64)}`), scripts: { 'policy.wasm': wasm() } },
      reason: 'DIGEST_MISMATCH',
      why: /its content is not sha256:0{64}/,
    },
    {
      name: 'a script that is not WebAssembly (Rego)',
      source: { type: 'document', bytes: document('ref: policy.rego'), scripts: { 'policy.rego': Buffer.from('package main') } },
      reason: 'UNSUPPORTED_SCRIPT',
      why: /not WebAssembly.*Rego/,
    },
    {
      name: 'a chainloop:// ref',
      source: { type: 'ref', ref: 'chainloop://builtin/sbom' },
      reason: 'UNSUPPORTED_REF',
      why: /need a Chainloop control plane/,
    },
    {
      name: 'an unknown scheme',
      source: { type: 'ref', ref: 'ftp://x/p.yaml' },
      reason: 'UNSUPPORTED_REF',
      why: /ftp:\/\/ is not supported/,
    },
    {
      name: 'a file ref on a daemon without a file root',
      source: { type: 'ref', ref: 'file://p/policy.yaml' },
      reason: 'UNSUPPORTED_REF',
      why: /file refs are off.*--file-root/,
    },
    {
      name: 'an oci:// ref on an engine without registry access',
      source: { type: 'ref', ref: 'oci://r.example/p:1' },
      reason: 'UNSUPPORTED_REF',
      why: /no OCI registry access/,
    },
    {
      name: 'bytes, when signatures are required',
      source: { type: 'module', bytes: wasm(), name: 'echo', kinds: [] },
      reason: 'SIGNATURE_NOT_VERIFIED',
      why: /only signed policies from an OCI registry/,
      options: { ...noNetwork, signatures: { verifier: new SignatureVerifier([]), allowUnsigned: false } },
    },
  ];
  for (const c of cases) {
    it(`refuses ${c.name}`, () => refused(c.source, c.reason, c.why, c.options));
  }

  describe('file refs below the file root', () => {
    const inRoot = (): LoaderOptions => ({ ...noNetwork, fileRoot: join(root, 'files') });
    it('reads a document and its script beside it, through a symlinked directory inside the root', async () => {
      const r = await resolvePolicy({ type: 'ref', ref: 'file://p/policy.yaml' }, inRoot());
      assert.equal(r.name, 'doc');
    });
    it('refuses a path that climbs out of the root', () =>
      refused({ type: 'ref', ref: '../outside.yaml' }, 'UNSUPPORTED_REF', /outside the directory/, inRoot()));
    it('refuses a symlink whose target is outside the root', () =>
      refused({ type: 'ref', ref: 'link.yaml' }, 'UNSUPPORTED_REF', /outside the directory/, inRoot()));
    it('names a missing file without saying more', () =>
      refused({ type: 'ref', ref: 'absent.yaml' }, 'SCRIPT_NOT_FOUND', /absent\.yaml cannot be read below/, inRoot()));
  });
});
