import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { Isolation, MaterialKind, type EvaluateResponse } from '../../src/gen/policyengine/v1/engine_pb.js';
import { evaluableInput } from '../../src/materials/evaluable.js';
import { errorInfo, grpcError, startDaemon, type Daemon } from '../helpers/daemon.js';
import { embeddedDocument, exampleRequest } from '../helpers/documents.js';
import { example, exampleMaterial, fixture } from '../helpers/paths.js';
import { behaviourModule, wat } from '../helpers/wat.js';
import type { PolicyEngineClient } from '../../clients/typescript/src/index.js';

interface Expectation {
  violations: string[];
  skipped?: boolean;
  skipReasons?: string[];
}

function summary(res: EvaluateResponse): Expectation {
  return { violations: res.result!.violations.map((v) => v.message), skipped: res.result!.skipped, skipReasons: res.result!.skipReasons };
}

describe('Evaluate', () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon();
    for (const name of ['simple', 'sbom', 'attestation', 'discover', 'cyclonedx-licenses', 'go-message']) {
      const { document, scripts } = exampleRequest(example(name));
      await d.tcp.loadPolicy({ source: { case: 'policyDocument', value: document }, scripts });
    }
  });
  after(() => d.stop());

  const cases: [string, string, string, MaterialKind, Record<string, string>, Expectation][] = [
    ['simple-validation', 'simple', 'pass.json', MaterialKind.EVIDENCE, {}, { violations: [] }],
    [
      'simple-validation',
      'simple',
      'fail.json',
      MaterialKind.EVIDENCE,
      {},
      { violations: ['message contains forbidden word: forbidden', 'message contains forbidden word: banned'] },
    ],
    ['simple-validation', 'simple', 'empty.json', MaterialKind.EVIDENCE, {}, { violations: ['message cannot be empty'] }],
    [
      'simple-validation',
      'simple',
      'pass.json',
      MaterialKind.EVIDENCE,
      { max_length: '3' },
      { violations: ['message too long: 5 characters (max 3)'] },
    ],
    ['sbom-validation', 'sbom', 'pass.json', MaterialKind.SBOM_CYCLONEDX_JSON, {}, { violations: [] }],
    [
      'sbom-validation',
      'sbom',
      'fail.json',
      MaterialKind.SBOM_CYCLONEDX_JSON,
      {},
      { violations: ["component 'left-pad' missing version", 'component at index 2 missing name'] },
    ],
    [
      'sbom-validation',
      'sbom',
      'not-cyclonedx.json',
      MaterialKind.SBOM_CYCLONEDX_JSON,
      {},
      { violations: [], skipped: true, skipReasons: ['not a CycloneDX SBOM'] },
    ],
    ['git-commit-signature', 'attestation', 'pass.json', MaterialKind.ATTESTATION, {}, { violations: [] }],
    [
      'git-commit-signature',
      'attestation',
      'fail.json',
      MaterialKind.ATTESTATION,
      {},
      { violations: ['git.head sha1 digest has invalid length: 9 (expected 40)', 'attestation must have a predicateType'] },
    ],
    [
      'git-commit-signature',
      'attestation',
      'not-in-toto.json',
      MaterialKind.ATTESTATION,
      {},
      { violations: [], skipped: true, skipReasons: ['not an in-toto attestation'] },
    ],
    [
      'policy-builtins',
      'discover',
      'image.txt',
      MaterialKind.CONTAINER_IMAGE,
      {},
      { violations: [], skipped: true, skipReasons: ['discover returned error (check if gRPC connection is configured)'] },
    ],
    ['cyclonedx-licenses', 'cyclonedx-licenses', 'pass.json', MaterialKind.SBOM_CYCLONEDX_JSON, {}, { violations: [] }],
    // Built with the standard Go toolchain (wasip1 reactor: the Go runtime starts in _initialize).
    ['go-message', 'go-message', 'pass.json', MaterialKind.EVIDENCE, {}, { violations: [] }],
    ['go-message', 'go-message', 'fail.json', MaterialKind.EVIDENCE, {}, { violations: ['message must be a non-empty string'] }],
    [
      'cyclonedx-licenses',
      'cyclonedx-licenses',
      'fail.json',
      MaterialKind.SBOM_CYCLONEDX_JSON,
      {},
      {
        violations: [
          "component 'readline-gpl' uses license 'GPL-3.0-only', which is not allowed",
          "component 'mystery' declares no license",
        ],
      },
    ],
    [
      'cyclonedx-licenses',
      'cyclonedx-licenses',
      'fail.json',
      MaterialKind.SBOM_CYCLONEDX_JSON,
      { allowed: 'MIT\nGPL-3.0-only', allow_unlicensed: 'true' },
      { violations: [] },
    ],
    [
      'cyclonedx-licenses',
      'cyclonedx-licenses',
      'pass.json',
      MaterialKind.SBOM_CYCLONEDX_JSON,
      { allowed: 'Apache-2.0, ISC' },
      {
        violations: [
          "component 'express' uses license 'MIT', which is not allowed",
          "component 'lodash' uses license 'MIT', which is not allowed",
          "component 'pg' uses license 'MIT', which is not allowed",
        ],
      },
    ],
  ];
  cases.forEach(([policy, dir, file, kind, args, expected], i) => {
    it(`${policy} on ${file}${Object.keys(args).length ? ` with ${JSON.stringify(args)}` : ''}`, async () => {
      const client: PolicyEngineClient = i % 2 === 0 ? d.tcp : d.unix;
      const res = await client.evaluate({ policy, material: { content: exampleMaterial(dir, file), kind }, args });
      assert.deepEqual(summary(res), { skipped: false, skipReasons: [], ...expected });
      assert.equal(res.policyName, policy);
      assert.match(res.evaluationId, /^[0-9a-f-]{36}$/);
      for (const v of res.result!.violations) assert.equal(v.subject, policy);
    });
  });

  it('returns the guest logs and, when asked, the exact input and output bytes', async () => {
    const res = await d.unix.evaluate({
      policy: 'simple-validation',
      material: { content: Buffer.from('{"message":"hi"}'), kind: MaterialKind.EVIDENCE, name: 'note', annotations: { team: 'red' } },
      options: { includeRawData: true },
    });
    assert.deepEqual(
      res.logs.map((l) => l.message),
      ['Validating message with max length: 100', 'Validation passed for message: hi'],
    );
    const input = JSON.parse(Buffer.from(res.rawResults[0]!.input).toString());
    assert.equal(input.message, 'hi');
    assert.deepEqual(input.chainloop_metadata.annotations, {
      'chainloop.material.name': 'note',
      'chainloop.material.type': 'EVIDENCE',
      team: 'red',
    });
    assert.deepEqual(JSON.parse(Buffer.from(res.rawResults[0]!.output).toString()), {
      skipped: false,
      violations: [],
      skip_reason: '',
      ignore: false,
    });
  });

  it('carries structured findings as google.protobuf.Struct', async () => {
    const res = await d.tcp.evaluate({
      policy: 'cyclonedx-licenses',
      material: { content: exampleMaterial('cyclonedx-licenses', 'fail.json'), kind: MaterialKind.SBOM_CYCLONEDX_JSON },
    });
    assert.deepEqual(res.result!.violations[0]!.finding, {
      message: "component 'readline-gpl' uses license 'GPL-3.0-only', which is not allowed",
      component_name: 'readline-gpl',
      component_version: '8.2.0',
      package_purl: 'pkg:generic/readline@8.2.0',
      license_id: 'GPL-3.0-only',
    });
  });

  it('evaluates by digest as well as by name', async () => {
    const listed = await d.tcp.listPolicies();
    const digest = listed.policies.find((p) => p.name === 'sbom-validation')!.digest;
    const res = await d.tcp.evaluate({
      policy: digest,
      material: { content: exampleMaterial('sbom', 'pass.json'), kind: MaterialKind.SBOM_CYCLONEDX_JSON },
    });
    assert.equal(res.policyDigest, digest);
  });

  it('answers ignored when no script applies to the material kind', async () => {
    const res = await d.tcp.evaluate({ policy: 'sbom-validation', material: { content: Buffer.from('{}'), kind: MaterialKind.SARIF } });
    assert.deepEqual({ ignored: res.result!.ignored, violations: res.result!.violations.length }, { ignored: true, violations: 0 });
  });

  const refusals: [string, object, number, string, RegExp][] = [
    [
      'an unknown policy',
      { policy: 'nope', material: { content: Buffer.from('{}'), kind: MaterialKind.EVIDENCE } },
      status.NOT_FOUND,
      'POLICY_NOT_FOUND',
      /policy "nope" is not loaded; load it with LoadPolicy/,
    ],
    ['no material', { policy: 'simple-validation' }, status.INVALID_ARGUMENT, 'INVALID_REQUEST', /material is required/],
    [
      'an unspecified kind',
      { policy: 'simple-validation', material: { content: Buffer.from('{}') } },
      status.INVALID_ARGUMENT,
      'INVALID_MATERIAL',
      /material\.kind is required/,
    ],
    [
      'an unknown kind number',
      { policy: 'simple-validation', material: { content: Buffer.from('{}'), kind: 99 } },
      status.INVALID_ARGUMENT,
      'INVALID_MATERIAL',
      /99 is not a known MaterialKind/,
    ],
    [
      'invalid JSON for a JSON kind',
      { policy: 'simple-validation', material: { content: Buffer.from('{"message":'), kind: MaterialKind.EVIDENCE } },
      status.INVALID_ARGUMENT,
      'INVALID_MATERIAL',
      /failed to parse input: EVIDENCE material is not valid JSON/,
    ],
  ];
  for (const [what, request, code, reason, message] of refusals) {
    it(`refuses ${what}`, async () => {
      await assert.rejects(d.tcp.evaluate(request), grpcError(code, reason, message));
    });
  }
});

describe('Evaluate: arguments reach the guest as Chainloop passes them', () => {
  let d: Daemon;
  const echo = async (client: PolicyEngineClient, policy: string, args: Record<string, string>) => {
    const res = await client.evaluate({ policy, material: { content: Buffer.from('[1]'), kind: MaterialKind.EVIDENCE, name: 'm' }, args });
    return { args: res.result!.violations[0]!.message, input: JSON.parse(res.result!.violations[1]!.message) };
  };
  before(async () => {
    d = await startDaemon();
    await d.tcp.loadPolicy({
      source: { case: 'policyDocument', value: embeddedDocument('echo-open', [{ kind: 'EVIDENCE', wasm: fixture('echo') }]) },
    });
    await d.tcp.loadPolicy({
      source: {
        case: 'policyDocument',
        value: embeddedDocument(
          'echo-declared',
          [{ wasm: fixture('echo') }],
          [{ name: 'users' }, { name: 'level', default: 'low' }, { name: 'token', required: true, description: 'API token' }],
        ),
      },
    });
  });
  after(() => d.stop());

  it('omits config "args" entirely when there are none', async () => {
    assert.equal((await echo(d.tcp, 'echo-open', {})).args, '<no args>');
  });

  it('splits commas and newlines, honours \\, escapes and passes undeclared args when no inputs are declared', async () => {
    const { args } = await echo(d.unix, 'echo-open', { users: 'john, sarah', esc: 'a\\,b', lines: 'x\ny', blank: ' ' });
    assert.deepEqual(JSON.parse(args), { users: ['john', 'sarah'], esc: 'a,b', lines: ['x', 'y'] });
  });

  it('applies defaults, drops undeclared args and requires required inputs', async () => {
    assert.deepEqual(JSON.parse((await echo(d.tcp, 'echo-declared', { token: 't', extra: 'dropped' })).args), { level: 'low', token: 't' });
    await assert.rejects(
      echo(d.tcp, 'echo-declared', { users: 'a' }),
      grpcError(status.INVALID_ARGUMENT, 'MISSING_INPUT', /missing required input "token" \(API token\)/),
    );
  });

  it('gives the guest the evaluable JSON: array wrapped, chainloop_metadata added', async () => {
    const { input } = await echo(d.tcp, 'echo-open', {});
    assert.deepEqual(input.elements, [1]);
    assert.equal(input.chainloop_metadata.name, 'm');
  });

  it('gives the guest the same input when the worker builds it (materials of 64 KiB and more)', async () => {
    const material = {
      content: Buffer.from(JSON.stringify({ components: Array.from({ length: 8000 }, (_, i) => ({ n: i })) })),
      kind: MaterialKind.EVIDENCE,
      name: 'large',
      annotations: { team: 'red' },
    };
    assert.ok(material.content.byteLength >= 64 * 1024);
    const res = await d.unix.evaluate({ policy: 'echo-open', material });
    assert.equal(res.result!.violations[1]!.message, Buffer.from(evaluableInput(material)).toString());
    await assert.rejects(
      d.unix.evaluate({ policy: 'echo-open', material: { ...material, content: Buffer.concat([material.content, Buffer.from('}')]) } }),
      grpcError(status.INVALID_ARGUMENT, 'INVALID_MATERIAL', /^failed to parse input: EVIDENCE material is not valid JSON/),
    );
  });

  it('gives a prepared material to the guest byte for byte', async () => {
    const res = await d.tcp.evaluate({
      policy: 'echo-open',
      material: { content: Buffer.from('raw \u00e9 bytes'), kind: MaterialKind.EVIDENCE, prepared: true },
    });
    assert.equal(res.result!.violations[1]!.message, 'raw \u00e9 bytes');
  });
});

describe('Evaluate: output rules and merging across scripts', () => {
  let d: Daemon;
  let n = 0;
  before(async () => {
    d = await startDaemon();
  });
  after(() => d.stop());

  async function load(scripts: { kind?: string; output?: string; error?: string; trap?: boolean; returns?: number }[]): Promise<string> {
    const name = `merge-${n++}`;
    const modules = await Promise.all(scripts.map(async (s) => ({ kind: s.kind, wasm: await behaviourModule(s) })));
    await d.tcp.loadPolicy({ source: { case: 'policyDocument', value: embeddedDocument(name, modules) } });
    return name;
  }
  const run = (policy: string) => d.unix.evaluate({ policy, material: { content: Buffer.from('{}'), kind: MaterialKind.EVIDENCE } });

  it('ignores the Execute return code when there is no error', async () => {
    const res = await run(await load([{ output: '{"violations":["v"]}', returns: 1 }]));
    assert.deepEqual(summary(res).violations, ['v']);
  });

  it('concatenates violations, ANDs skipped and drops ignored results and scripts for other kinds', async () => {
    const policy = await load([
      { kind: 'EVIDENCE', output: '{"violations":["a",{"message":"b"}]}' },
      { output: '{"skipped":true,"skip_reason":"not mine"}' },
      { output: '{"ignore":true,"violations":["hidden"]}' },
      { kind: 'SARIF', output: '{"violations":["other kind"]}' },
    ]);
    assert.deepEqual(summary(await run(policy)), { violations: ['a', 'b'], skipped: false, skipReasons: [] });
  });

  it('is skipped only when every kept result is, with every non-empty reason', async () => {
    const policy = await load([
      { output: '{"skipped":true,"skip_reason":"one"}' },
      { output: '{"skipped":true}' },
      { output: '{"skipped":true,"skip_reason":"two"}' },
    ]);
    assert.deepEqual(summary(await run(policy)), { violations: [], skipped: true, skipReasons: ['one', 'two'] });
  });

  it('is ignored when every script asks to be', async () => {
    const res = await run(await load([{ output: '{"ignore":true}' }, { output: '{"ignore":true,"skipped":true}' }]));
    assert.equal(res.result!.ignored, true);
  });

  const failures: [string, object, number, string, RegExp][] = [
    [
      'error_set',
      { output: '{}', error: 'boom: bad input' },
      status.ABORTED,
      'POLICY_ERROR',
      /^policy execution failed: boom: bad input\n\nHint: Enable debug logging with --debug for more details\.$/,
    ],
    [
      'a trap',
      { output: '{"violations":[]}', trap: true },
      status.ABORTED,
      'POLICY_PANIC',
      /^policy execution failed: wasm error: unreachable\n\nHint: /,
    ],
    ['no output', {}, status.ABORTED, 'INVALID_OUTPUT', /^failed to parse policy output: unexpected end of JSON input$/],
    ['output that is not JSON', { output: 'ok!' }, status.ABORTED, 'INVALID_OUTPUT', /^failed to parse policy output: /],
    [
      'a violation of the wrong type',
      { output: '{"violations":[true]}' },
      status.ABORTED,
      'INVALID_OUTPUT',
      /violation must be a string or object, got bool/,
    ],
  ];
  for (const [what, behaviour, code, reason, message] of failures) {
    it(`answers ${what} with the policy's name and Chainloop's message`, async () => {
      const policy = await load([behaviour]);
      await assert.rejects(
        run(policy),
        (err: unknown) => grpcError(code, reason, message)(err) && errorInfo(err)?.metadata.policy === policy,
      );
    });
  }
});

/** Counts its calls in a global, a memory cell and an Extism var; reports the three counts. */
function statefulGuest(): Promise<Uint8Array> {
  return wat(`(module
        (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
        (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
        (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
        (import "extism:host/env" "var_get" (func $var_get (param i64) (result i64)))
        (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
        (memory (export "memory") 1)
        (global $calls (mut i32) (i32.const 0))
        (data (i32.const 0) "{\\"violations\\":[\\"g0 m0 v0\\"]}")
        (func $block (param $n i32) (result i64) (local $o i64) (local $i i32)
          (local.set $o (call $alloc (i64.extend_i32_u (local.get $n))))
          (block $done (loop $copy
            (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
            (call $store_u8 (i64.add (local.get $o) (i64.extend_i32_u (local.get $i))) (i32.load8_u (local.get $i)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $copy)))
          (local.get $o))
        (func (export "Execute") (result i32)
          (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
          (i32.store (i32.const 100) (i32.add (i32.load (i32.const 100)) (i32.const 1)))
          (i32.store8 (i32.const 17) (i32.add (i32.const 48) (global.get $calls)))
          (i32.store8 (i32.const 20) (i32.add (i32.const 48) (i32.load (i32.const 100))))
          ;; var_get consumes its key block, so each call gets its own.
          (if (i64.ne (call $var_get (call $block (i32.const 1))) (i64.const 0)) (then (i32.store8 (i32.const 23) (i32.const 57))))
          (call $var_set (call $block (i32.const 1)) (call $block (i32.const 1)))
          (call $output_set (call $block (i32.const 27)) (i64.const 27))
          (i32.const 0)))`);
}

describe('Evaluate: isolation between evaluations', () => {
  it('gives every evaluation a never-used instance: globals, linear memory and vars start fresh', async () => {
    const d = await startDaemon({ threads: 1 });
    try {
      const wasm = await statefulGuest();
      await d.tcp.loadPolicy({ source: { case: 'wasmModule', value: wasm }, name: 'stateful' });
      for (let i = 0; i < 5; i++) {
        const res = await d.tcp.evaluate({ policy: 'stateful', material: { content: Buffer.from('{}'), kind: MaterialKind.EVIDENCE } });
        assert.deepEqual(
          res.result!.violations.map((v) => v.message),
          ['g1 m1 v0'],
          `evaluation ${i + 1}`,
        );
      }
    } finally {
      await d.stop();
    }
  });
});

describe('Evaluate: ISOLATION_REUSED_INSTANCE is retired', () => {
  it('is accepted, answered as FRESH_INSTANCE, and evaluations stay isolated', async () => {
    const d = await startDaemon({ threads: 1 });
    try {
      const res = await d.tcp.loadPolicy({
        source: { case: 'wasmModule', value: await statefulGuest() },
        name: 'stateful-reused',
        isolation: Isolation.REUSED_INSTANCE,
      });
      assert.equal(res.policy?.isolation, Isolation.FRESH_INSTANCE);
      for (let i = 0; i < 4; i++) {
        const out = await d.tcp.evaluate({
          policy: 'stateful-reused',
          material: { content: Buffer.from('{}'), kind: MaterialKind.EVIDENCE },
        });
        assert.deepEqual(
          out.result!.violations.map((v) => v.message),
          ['g1 m1 v0'],
          `evaluation ${i + 1}`,
        );
      }
    } finally {
      await d.stop();
    }
  });
});
