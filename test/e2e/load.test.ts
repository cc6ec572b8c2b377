import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { MaterialKind } from '../../src/gen/policyengine/v1/engine_pb.js';
import { grpcError, startDaemon, type Daemon } from '../helpers/daemon.js';
import { embeddedDocument, exampleRequest } from '../helpers/documents.js';
import { ROOT, example, fixture } from '../helpers/paths.js';
import { behaviourModule, wat } from '../helpers/wat.js';

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('LoadPolicy: file:// refs are confined and never echo what they read', () => {
  const root = mkdtempSync(join(tmpdir(), 'policyd-file-root-'));
  const secret = 'hunter2-the-secret';
  let d: Daemon;
  let off: Daemon;
  before(async () => {
    writeFileSync(join(tmpdir(), `${basename(root)}-outside.yaml`), `kind: Policy\npassword: ${secret}\n`);
    symlinkSync(join(tmpdir(), `${basename(root)}-outside.yaml`), join(root, 'escape.yaml'));
    writeFileSync(join(root, 'broken.yaml'), `password: ${secret}\nlist: [\nnext: ${secret}\n`);
    d = await startDaemon({ fileRoot: root });
    off = await startDaemon();
  });
  after(async () => {
    await d.stop();
    await off.stop();
    rmSync(root, { recursive: true, force: true });
    rmSync(join(tmpdir(), `${basename(root)}-outside.yaml`), { force: true });
  });

  const ref = (value: string) => ({ source: { case: 'ref' as const, value } });
  const quiet = (err: unknown) => {
    assert.doesNotMatch((err as Error).message, new RegExp(secret));
    return true;
  };

  it('are refused when the daemon has no file root (the default)', async () => {
    await assert.rejects(
      off.tcp.loadPolicy(ref('file://examples/policies/simple/policy.yaml')),
      grpcError(status.INVALID_ARGUMENT, 'UNSUPPORTED_REF', /file refs are off on this daemon.*--file-root/),
    );
  });

  it('do not follow a symlink out of the root', async () => {
    await assert.rejects(
      d.tcp.loadPolicy(ref('file://escape.yaml')),
      grpcError(status.INVALID_ARGUMENT, 'UNSUPPORTED_REF', /escape.yaml is outside the directory/),
    );
    await assert.rejects(d.tcp.loadPolicy(ref('file://escape.yaml')), quiet);
  });

  it('report a document that does not parse by position, without quoting it', async () => {
    await assert.rejects(
      d.tcp.loadPolicy(ref('file://broken.yaml')),
      grpcError(status.INVALID_ARGUMENT, 'INVALID_DOCUMENT', /broken.yaml is neither YAML nor JSON: .*line 3, column 1$/),
    );
    await assert.rejects(d.tcp.loadPolicy(ref('file://broken.yaml')), quiet);
  });

  it('name a missing file without revealing more', async () => {
    await assert.rejects(
      d.tcp.loadPolicy(ref('file://nothing-here.yaml')),
      grpcError(status.INVALID_ARGUMENT, 'SCRIPT_NOT_FOUND', /nothing-here.yaml cannot be read below/),
    );
  });
});

describe('LoadPolicy', () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon({ fileRoot: ROOT });
  });
  after(() => d.stop());

  it('loads a document whose script travels in the scripts map; the same content again is a no-op', async () => {
    const { document, scripts } = exampleRequest(example('sbom'));
    const first = await d.tcp.loadPolicy({ source: { case: 'policyDocument', value: document }, scripts });
    assert.equal(first.alreadyLoaded, false);
    assert.equal(first.policy?.name, 'sbom-validation');
    assert.match(first.policy!.digest, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(
      first.policy!.scripts.map((s) => [s.kind, s.digest, Number(s.sizeBytes)]),
      [[MaterialKind.SBOM_CYCLONEDX_JSON, sha256(scripts['policy.wasm']!), scripts['policy.wasm']!.byteLength]],
    );
    const again = await d.unix.loadPolicy({ source: { case: 'policyDocument', value: document }, scripts });
    assert.equal(again.alreadyLoaded, true);
    assert.equal(again.policy?.digest, first.policy?.digest);
  });

  it('reports inputs and description, and folds external script bytes into the digest', async () => {
    const { document, scripts } = exampleRequest(example('cyclonedx-licenses'));
    const loaded = await d.tcp.loadPolicy({ source: { case: 'policyDocument', value: document }, scripts });
    assert.equal(loaded.policy?.findingType, 'LICENSE_VIOLATION');
    assert.deepEqual(
      loaded.policy?.inputs.map((i) => [i.name, i.required, i.default]),
      [
        ['allowed', false, 'MIT, Apache-2.0, BSD-2-Clause, BSD-3-Clause, ISC'],
        ['allow_unlicensed', false, 'false'],
      ],
    );
    const other = await d.tcp.loadPolicy({
      source: { case: 'policyDocument', value: document },
      scripts: { 'policy.wasm': fixture('echo') },
    });
    assert.notEqual(other.policy?.digest, loaded.policy?.digest, 'different script bytes must give a different digest');
    assert.equal(other.alreadyLoaded, false);
  });

  it('loads a bare wasm_module with a name and kinds, digest = sha256 of the module', async () => {
    const wasm = fixture('echo');
    const res = await d.tcp.loadPolicy({
      source: { case: 'wasmModule', value: wasm },
      name: 'echo',
      kinds: [MaterialKind.EVIDENCE, MaterialKind.SARIF],
    });
    assert.equal(res.policy?.digest, sha256(wasm));
    assert.deepEqual(
      res.policy?.scripts.map((s) => s.kind),
      [MaterialKind.EVIDENCE, MaterialKind.SARIF],
    );
  });

  it('loads a file:// ref pinned with @sha256 of the document, reading its script beside it', async () => {
    const path = 'examples/policies/simple/policy.yaml';
    const pin = sha256(readFileSync(`${ROOT}${path}`)).slice('sha256:'.length);
    const res = await d.unix.loadPolicy({ source: { case: 'ref', value: `file://${path}@sha256:${pin}` } });
    assert.equal(res.policy?.name, 'simple-validation');
    await assert.rejects(
      d.unix.loadPolicy({ source: { case: 'ref', value: `${path}@sha256:${'0'.repeat(64)}` } }),
      grpcError(status.INVALID_ARGUMENT, 'DIGEST_MISMATCH', /^digest mismatch for policy document [^ ]+: its content is not sha256:0{64}$/),
    );
  });

  it('accepts embedded base64 WebAssembly (the only way through a control plane)', async () => {
    const wasm = await behaviourModule({ output: '{"violations":["x"]}' });
    const res = await d.tcp.loadPolicy({
      source: { case: 'policyDocument', value: embeddedDocument('embedded-b64', [{ kind: 'EVIDENCE', wasm }]) },
    });
    assert.deepEqual(
      res.policy?.scripts.map((s) => s.digest),
      [sha256(wasm)],
    );
  });

  const refusals: [string, () => Promise<object>, number, string, RegExp][] = [
    ['no source', async () => ({}), status.INVALID_ARGUMENT, 'INVALID_REQUEST', /needs a source/],
    [
      'a document that does not parse',
      async () => ({ source: { case: 'policyDocument', value: Buffer.from('a: [') } }),
      status.INVALID_ARGUMENT,
      'INVALID_DOCUMENT',
      /neither YAML nor JSON/,
    ],
    [
      'a Rego script',
      async () => ({
        source: {
          case: 'policyDocument',
          value: Buffer.from(
            'apiVersion: chainloop.dev/v1\nkind: Policy\nmetadata: {name: rego}\nspec:\n  policies:\n    - kind: EVIDENCE\n      embedded: |\n        package main\n        result := {"violations": []}\n',
          ),
        },
      }),
      status.UNIMPLEMENTED,
      'UNSUPPORTED_SCRIPT',
      /spec\.policies\.0\.embedded of policy "rego" is not WebAssembly \(Chainloop would run it as Rego\): only WASM scripts are supported/,
    ],
    [
      'a script missing from the scripts map',
      async () => ({ source: { case: 'policyDocument', value: exampleRequest(example('sbom')).document } }),
      status.INVALID_ARGUMENT,
      'SCRIPT_NOT_FOUND',
      /refers to "policy.wasm", which is not in the request's scripts map; send its bytes in LoadPolicyRequest.scripts under the key "policy.wasm"/,
    ],
    [
      'bytes that are not WebAssembly',
      async () => ({ source: { case: 'wasmModule', value: Buffer.from('hello') }, name: 'x' }),
      status.INVALID_ARGUMENT,
      'INVALID_MODULE',
      /not a WebAssembly module/,
    ],
    [
      'truncated WebAssembly',
      async () => ({ source: { case: 'wasmModule', value: fixture('echo').subarray(0, 200) }, name: 'x' }),
      status.INVALID_ARGUMENT,
      'INVALID_MODULE',
      /does not compile/,
    ],
    [
      'a module without Execute',
      async () => ({ source: { case: 'wasmModule', value: await wat('(module (func (export "Run")))') }, name: 'x' }),
      status.INVALID_ARGUMENT,
      'MISSING_EXECUTE',
      /wasm module validation failed: missing required 'Execute' function export/,
    ],
    [
      'an import the host does not provide',
      async () => ({
        source: {
          case: 'wasmModule',
          value: await wat(
            '(module (import "env" "abort" (func)) (import "extism:host/env" "reset" (func)) (func (export "Execute") (result i32) (i32.const 0)))',
          ),
        },
        name: 'x',
      }),
      status.INVALID_ARGUMENT,
      'UNSATISFIED_IMPORT',
      /imports what this host does not provide: "env" "abort" \(function\), "extism:host\/env" "reset" \(function\)/,
    ],
    [
      'a bad policy name',
      async () => ({ source: { case: 'wasmModule', value: fixture('echo') }, name: 'Bad Name' }),
      status.INVALID_ARGUMENT,
      'INVALID_REQUEST',
      /not a valid policy name/,
    ],
    [
      'a ref outside the file root',
      async () => ({ source: { case: 'ref', value: 'file:///etc/passwd' } }),
      status.INVALID_ARGUMENT,
      'UNSUPPORTED_REF',
      /outside the directory this daemon reads policies from/,
    ],
    [
      'a chainloop:// ref',
      async () => ({ source: { case: 'ref', value: 'chainloop://my-policy' } }),
      status.INVALID_ARGUMENT,
      'UNSUPPORTED_REF',
      /need a Chainloop control plane/,
    ],
    [
      'a module whose start traps',
      async () => ({
        source: {
          case: 'wasmModule',
          value: await wat('(module (func $s unreachable) (start $s) (func (export "Execute") (result i32) (i32.const 0)))'),
        },
        name: 'x',
      }),
      status.INVALID_ARGUMENT,
      'INVALID_MODULE',
      /cannot be instantiated: .*unreachable/,
    ],
  ];
  for (const [what, request, code, reason, message] of refusals) {
    it(`refuses ${what}`, async () => {
      await assert.rejects(d.tcp.loadPolicy(await request()), grpcError(code, reason, message));
    });
  }
});

describe('LoadPolicy from http(s) refs', () => {
  let web: import('node:http').Server;
  let base: string;
  let d: Daemon;
  before(async () => {
    const { createServer } = await import('node:http');
    web = createServer((req, res) => {
      let body: Buffer;
      try {
        body = readFileSync(`${ROOT}examples/policies${req.url}`);
      } catch {
        return res.writeHead(404).end();
      }
      res.writeHead(200).end(body);
    });
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(web.address() as import('node:net').AddressInfo).port}`;
    d = await startDaemon({ http: { allowPrivateNetwork: true } });
  });
  after(async () => {
    await d.stop();
    web.close();
  });

  it('fetches a pinned document and the scripts it names relative to its URL', async () => {
    const pin = sha256(readFileSync(example('sbom'))).slice('sha256:'.length);
    const res = await d.tcp.loadPolicy({ source: { case: 'ref', value: `${base}/sbom/policy.yaml@sha256:${pin}` } });
    assert.equal(res.policy?.name, 'sbom-validation');
    assert.equal(res.policy?.scripts[0]?.digest, sha256(readFileSync(example('sbom', 'policy.wasm'))));
  });

  it('refuses a pin that does not match and a document that is not there', async () => {
    await assert.rejects(
      d.tcp.loadPolicy({ source: { case: 'ref', value: `${base}/sbom/policy.yaml@sha256:${'2'.repeat(64)}` } }),
      grpcError(status.INVALID_ARGUMENT, 'DIGEST_MISMATCH'),
    );
    await assert.rejects(
      d.tcp.loadPolicy({ source: { case: 'ref', value: `${base}/nope/policy.yaml` } }),
      grpcError(status.INVALID_ARGUMENT, 'SCRIPT_NOT_FOUND', /cannot fetch .*nope\/policy.yaml: HTTP 404/),
    );
  });

  it('refuses private addresses unless private networks are allowed', async () => {
    const guarded = await startDaemon();
    try {
      await assert.rejects(
        guarded.tcp.loadPolicy({ source: { case: 'ref', value: `${base}/sbom/policy.yaml` } }),
        grpcError(status.INVALID_ARGUMENT, 'UNSUPPORTED_REF', /reaches the private address 127.0.0.1/),
      );
    } finally {
      await guarded.stop();
    }
  });
});
