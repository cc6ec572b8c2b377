import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { MaterialKind } from '../../src/gen/policyengine/v1/engine_pb.js';
import type { PolicyEngineClient } from '../../clients/typescript/src/index.js';
import { grpcError, startDaemon, type Daemon } from '../helpers/daemon.js';
import { embeddedDocument, exampleRequest } from '../helpers/documents.js';
import { ROOT, example, exampleMaterial, fixture } from '../helpers/paths.js';
import { behaviourModule, wat } from '../helpers/wat.js';

/** Extism kernel imports for the inline guests below. */
const KERNEL = `
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
  (import "extism:host/env" "log_info" (func $log_info (param i64)))
  (memory (export "memory") 1)
  (func $byte (param $b i32) (result i64) (local $o i64)
    (local.set $o (call $alloc (i64.const 1))) (call $store_u8 (local.get $o) (local.get $b)) (local.get $o))`;
const guest = (body: string) => wat(`(module ${KERNEL} (func (export "Execute") (result i32) ${body}))`);

const GUESTS = {
  memoryBomb: () =>
    wat(
      '(module (memory (export "memory") 1) (func (export "Execute") (result i32) (loop (br_if 0 (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) unreachable))',
    ),
  allocHog: () => guest('(loop (br_if 0 (i64.ne (call $alloc (i64.const 1048576)) (i64.const 0)))) unreachable'),
  stackOverflow: () =>
    wat(
      '(module (memory (export "memory") 1) (func $r (param i32) (result i32) (call $r (i32.add (local.get 0) (i32.const 1)))) (func (export "Execute") (result i32) (call $r (i32.const 0))))',
    ),
  outputBomb: () => guest('(call $output_set (call $alloc (i64.const 33554432)) (i64.const 33554432)) (i32.const 0)'),
  varStoreFull: () => guest('(call $var_set (call $byte (i32.const 65)) (call $alloc (i64.const 2097152))) (i32.const 0)'),
  logFlood: () =>
    guest(`(local $i i32) (local $m i64) (local.set $m (call $byte (i32.const 65)))
      (loop (call $log_info (local.get $m)) (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if 0 (i32.lt_u (local.get $i) (i32.const 100000))))
      (local.set $m (call $alloc (i64.const 2))) (call $store_u8 (local.get $m) (i32.const 123))
      (call $store_u8 (i64.add (local.get $m) (i64.const 1)) (i32.const 125)) (call $output_set (local.get $m) (i64.const 2)) (i32.const 0)`),
};

interface Case {
  what: string;
  call: (c: PolicyEngineClient) => Promise<unknown>;
  code: number;
  reason: string | undefined;
  message: RegExp;
}

describe('every bad input gets a defined status and a message that says what to do', () => {
  let d: Daemon;
  let web: Server;
  let port: number;
  const evidence = (content: string | Buffer = '{}') => ({ content: Buffer.from(content), kind: MaterialKind.EVIDENCE });
  const load = (c: PolicyEngineClient, name: string, wasm: Uint8Array) =>
    c.loadPolicy({ source: { case: 'wasmModule', value: wasm }, name });
  const evaluate = (c: PolicyEngineClient, policy: string, options = {}) => c.evaluate({ policy, material: evidence(), options });
  const loadAndRun = async (c: PolicyEngineClient, name: string, wasm: Uint8Array | Promise<Uint8Array>, options = {}) => {
    await load(c, name, await wasm);
    return evaluate(c, name, options);
  };
  const httpCheck = (c: PolicyEngineClient, path: string, allowedHostnames: string[]) =>
    c.evaluate({
      policy: 'http-example',
      material: evidence(JSON.stringify({ check_url: `http://127.0.0.1:${port}${path}` })),
      options: { allowedHostnames },
    });

  before(async () => {
    web = createServer((req, res) => {
      if (req.url === '/redirect') res.writeHead(302, { location: `http://127.0.0.9:${port}/` }).end();
      else res.writeHead(200).end(Buffer.alloc(req.url === '/big' ? 10_000 : 10, 0x20));
    });
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    port = (web.address() as AddressInfo).port;
    d = await startDaemon(
      {
        maxLogEntries: 50,
        fileRoot: ROOT,
        http: { allowPrivateNetwork: true, maxResponseBytes: 1000 },
        permittedRequestHosts: ['127.0.0.1', 'example.com'],
      },
      { maxReceiveMessageBytes: 1024 * 1024 },
    );
    const { document, scripts } = exampleRequest(example('http'));
    await d.tcp.loadPolicy({ source: { case: 'policyDocument', value: document }, scripts });
    await d.tcp.loadPolicy({
      source: { case: 'policyDocument', value: exampleRequest(example('simple')).document },
      scripts: exampleRequest(example('simple')).scripts,
    });
    await d.tcp.loadPolicy({
      source: {
        case: 'policyDocument',
        value: embeddedDocument('needs-input', [{ wasm: fixture('echo') }], [{ name: 'token', required: true }]),
      },
    });
  });
  after(async () => {
    await d.stop();
    web.close();
  });

  const doc = (text: string) => (c: PolicyEngineClient) => c.loadPolicy({ source: { case: 'policyDocument', value: Buffer.from(text) } });
  const cases: Case[] = [
    {
      what: 'bytes that are not WebAssembly',
      call: (c) => load(c, 'x', Buffer.from('MZ\x90\x00')),
      code: status.INVALID_ARGUMENT,
      reason: 'INVALID_MODULE',
      message: /is not a WebAssembly module/,
    },
    {
      what: 'truncated WebAssembly',
      call: (c) => load(c, 'x', fixture('echo').subarray(0, 100)),
      code: status.INVALID_ARGUMENT,
      reason: 'INVALID_MODULE',
      message: /does not compile/,
    },
    {
      what: 'a component instead of a core module',
      call: (c) => load(c, 'x', Buffer.from([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0])),
      code: status.INVALID_ARGUMENT,
      reason: 'INVALID_MODULE',
      message: /not a WebAssembly core module .*components are not supported/,
    },
    {
      what: 'a module without Execute',
      call: async (c) => load(c, 'x', await wat('(module (func (export "execute")))')),
      code: status.INVALID_ARGUMENT,
      reason: 'MISSING_EXECUTE',
      message: /missing required 'Execute' function export/,
    },
    {
      what: 'an unsatisfiable import',
      call: async (c) =>
        load(
          c,
          'x',
          await wat('(module (import "wasi_snapshot_preview2" "x" (func)) (func (export "Execute") (result i32) (i32.const 0)))'),
        ),
      code: status.INVALID_ARGUMENT,
      reason: 'UNSATISFIED_IMPORT',
      message: /"wasi_snapshot_preview2" "x"/,
    },
    {
      what: 'an imported memory',
      call: async (c) =>
        load(c, 'x', await wat('(module (import "env" "memory" (memory 1)) (func (export "Execute") (result i32) (i32.const 0)))')),
      code: status.INVALID_ARGUMENT,
      reason: 'UNSATISFIED_IMPORT',
      message: /"env" "memory" \(memory\)/,
    },
    {
      what: 'a module declaring more memory than the cap',
      call: async (c) =>
        load(c, 'x', await wat('(module (memory (export "memory") 8192) (func (export "Execute") (result i32) (i32.const 0)))')),
      code: status.RESOURCE_EXHAUSTED,
      reason: 'POLICY_MEMORY',
      message: /declares 8192 pages \(512 MiB\) of initial memory, more than the 256 MiB memory limit/,
    },
    {
      what: 'a start function that traps',
      call: async (c) =>
        load(c, 'x', await wat('(module (func $s unreachable) (start $s) (func (export "Execute") (result i32) (i32.const 0)))')),
      code: status.INVALID_ARGUMENT,
      reason: 'INVALID_MODULE',
      message: /cannot be instantiated/,
    },
    {
      what: 'YAML that does not parse',
      call: doc('kind: Policy\n  bad: [indent'),
      code: status.INVALID_ARGUMENT,
      reason: 'INVALID_DOCUMENT',
      message: /neither YAML nor JSON/,
    },
    {
      what: 'a wrong apiVersion',
      call: doc('apiVersion: chainloop.dev/v2\nkind: Policy\nmetadata: {name: p}\nspec: {embedded: x}'),
      code: status.INVALID_ARGUMENT,
      reason: 'INVALID_DOCUMENT',
      message: /apiVersion: Invalid option/,
    },
    {
      what: 'a wrong kind',
      call: doc('apiVersion: chainloop.dev/v1\nkind: PolicyGroup\nmetadata: {name: p}\nspec: {embedded: x}'),
      code: status.INVALID_ARGUMENT,
      reason: 'INVALID_DOCUMENT',
      message: /kind: Invalid input: expected "Policy"/,
    },
    {
      what: 'a Rego script',
      call: doc('apiVersion: chainloop.dev/v1\nkind: Policy\nmetadata: {name: p}\nspec: {embedded: "package main"}'),
      code: status.UNIMPLEMENTED,
      reason: 'UNSUPPORTED_SCRIPT',
      message: /only WASM scripts are supported/,
    },
    {
      what: 'a digest mismatch',
      call: (c) =>
        c
          .loadPolicy({
            source: { case: 'policyDocument', value: exampleRequest(example('simple')).document },
            scripts: { 'policy.wasm': fixture('echo') },
          })
          .then(() => c.loadPolicy({ source: { case: 'ref', value: `examples/policies/simple/policy.yaml@sha256:${'1'.repeat(64)}` } })),
      code: status.INVALID_ARGUMENT,
      reason: 'DIGEST_MISMATCH',
      message: /digest mismatch/,
    },
    {
      what: 'an unknown policy',
      call: (c) => evaluate(c, 'missing'),
      code: status.NOT_FOUND,
      reason: 'POLICY_NOT_FOUND',
      message: /policy "missing" is not loaded/,
    },
    {
      what: 'an unknown material kind',
      call: (c) => c.evaluate({ policy: 'simple-validation', material: { content: Buffer.from('{}'), kind: 77 as MaterialKind } }),
      code: status.INVALID_ARGUMENT,
      reason: 'INVALID_MATERIAL',
      message: /77 is not a known MaterialKind/,
    },
    {
      what: 'a missing required input',
      call: (c) => evaluate(c, 'needs-input'),
      code: status.INVALID_ARGUMENT,
      reason: 'MISSING_INPUT',
      message: /missing required input "token"/,
    },
    {
      what: 'a material larger than the receive limit',
      call: (c) => c.evaluate({ policy: 'simple-validation', material: evidence(Buffer.alloc(2 * 1024 * 1024, 0x20)) }),
      code: status.RESOURCE_EXHAUSTED,
      reason: undefined,
      message: /Received message larger than max/,
    },
    {
      what: 'invalid JSON for a JSON kind',
      call: (c) => c.evaluate({ policy: 'simple-validation', material: evidence('{"message": tru') }),
      code: status.INVALID_ARGUMENT,
      reason: 'INVALID_MATERIAL',
      message: /EVIDENCE material is not valid JSON/,
    },
    {
      what: 'empty guest output',
      call: (c) => loadAndRun(c, 'no-output', behaviourModule({})),
      code: status.ABORTED,
      reason: 'INVALID_OUTPUT',
      message: /unexpected end of JSON input/,
    },
    {
      what: 'guest output that is not JSON',
      call: (c) => loadAndRun(c, 'not-json', behaviourModule({ output: '<xml/>' })),
      code: status.ABORTED,
      reason: 'INVALID_OUTPUT',
      message: /failed to parse policy output/,
    },
    {
      what: 'violations of the wrong type',
      call: (c) => loadAndRun(c, 'bad-violations', behaviourModule({ output: '{"violations":[42]}' })),
      code: status.ABORTED,
      reason: 'INVALID_OUTPUT',
      message: /violation must be a string or object, got float64/,
    },
    {
      what: 'error_set',
      call: (c) => loadAndRun(c, 'error-set', behaviourModule({ error: 'cannot read SBOM' })),
      code: status.ABORTED,
      reason: 'POLICY_ERROR',
      message: /^policy execution failed: cannot read SBOM\n\nHint:/,
    },
    {
      what: 'a trap',
      call: (c) => loadAndRun(c, 'trap', behaviourModule({ trap: true })),
      code: status.ABORTED,
      reason: 'POLICY_PANIC',
      message: /wasm error: unreachable/,
    },
    {
      what: 'a stack overflow',
      call: (c) => loadAndRun(c, 'stack', GUESTS.stackOverflow()),
      code: status.ABORTED,
      reason: 'POLICY_PANIC',
      message: /wasm error: stack overflow/,
    },
    {
      what: 'an output bomb',
      call: (c) => loadAndRun(c, 'output-bomb', GUESTS.outputBomb()),
      code: status.RESOURCE_EXHAUSTED,
      reason: 'OUTPUT_TOO_LARGE',
      message: /policy output of 33554432 bytes exceeds the 16777216-byte limit/,
    },
    {
      what: 'a full var store',
      call: (c) => loadAndRun(c, 'var-store', GUESTS.varStoreFull()),
      code: status.RESOURCE_EXHAUSTED,
      reason: 'VAR_STORE_FULL',
      message: /Variable store is full \(var memory limit exceeded: 2097152 bytes requested, 1048576 allowed\)/,
    },
    {
      what: 'a guest that spins',
      call: (c) => loadAndRun(c, 'spin', fixture('spin'), { timeoutMs: 300 }),
      code: status.DEADLINE_EXCEEDED,
      reason: 'POLICY_TIMEOUT',
      message: /Policy execution timeout exceeded/,
    },
    {
      what: 'a memory bomb',
      call: (c) => loadAndRun(c, 'memory-bomb', GUESTS.memoryBomb()),
      code: status.RESOURCE_EXHAUSTED,
      reason: 'POLICY_MEMORY',
      message: /Policy exceeded memory limits/,
    },
    {
      what: 'an allocation bomb in Extism memory',
      call: (c) => loadAndRun(c, 'alloc-hog', GUESTS.allocHog()),
      code: status.RESOURCE_EXHAUSTED,
      reason: 'POLICY_MEMORY',
      message: /Policy exceeded memory limits/,
    },
    {
      what: 'HTTP to a denied host',
      call: (c) => httpCheck(c, '/', ['example.com']),
      code: status.PERMISSION_DENIED,
      reason: 'HTTP_FORBIDDEN',
      message: /hostname '127.0.0.1' is not in the allowed hosts list/,
    },
    {
      what: 'an HTTP redirect to a denied host',
      call: (c) => httpCheck(c, '/redirect', ['127.0.0.1']),
      code: status.PERMISSION_DENIED,
      reason: 'HTTP_FORBIDDEN',
      message: /hostname '127.0.0.9' is not in the allowed hosts list/,
    },
    {
      what: 'an oversized HTTP response',
      call: (c) => httpCheck(c, '/big', ['127.0.0.1']),
      code: status.ABORTED,
      reason: 'POLICY_ERROR',
      message: /exceeds the limit of 1000 bytes/,
    },
    {
      what: 'allowed_hostnames the server does not permit',
      call: (c) => httpCheck(c, '/', ['*.internal']),
      code: status.PERMISSION_DENIED,
      reason: 'HOSTNAME_NOT_PERMITTED',
      message: /\*\.internal are outside what this server lets requests allow/,
    },
    {
      what: 'a deeply nested material with its own chainloop_metadata',
      call: (c) =>
        c.evaluate({
          policy: 'simple-validation',
          material: evidence(`{"chainloop_metadata":1,"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`),
        }),
      code: status.INVALID_ARGUMENT,
      reason: 'INVALID_MATERIAL',
      message: /nested too deeply/,
    },
    {
      what: 'too many allowed_hostnames',
      call: (c) =>
        httpCheck(
          c,
          '/',
          Array.from({ length: 65 }, (_, i) => `h${i}.example.com`),
        ),
      code: status.INVALID_ARGUMENT,
      reason: 'INVALID_REQUEST',
      message: /at most 64 entries of at most 253 characters/,
    },
    {
      what: 'an allowed_hostnames entry longer than a DNS name',
      call: (c) => httpCheck(c, '/', [`${'*a'.repeat(200)}.example.com`]),
      code: status.INVALID_ARGUMENT,
      reason: 'INVALID_REQUEST',
      message: /allowed_hostnames/,
    },
  ];
  cases.forEach((c, i) => {
    it(`${i + 1}. ${c.what}`, async () => {
      await assert.rejects(c.call(i % 2 ? d.unix : d.tcp), grpcError(c.code, c.reason, c.message));
    });
  });

  it('truncates a log flood instead of buffering it', async () => {
    const res = await loadAndRun(d.tcp, 'log-flood', GUESTS.logFlood());
    assert.equal(res.logs.length, 51);
    assert.equal(res.logs.at(-1)!.message, '99950 more log entries dropped (limit 50)');
  });

  it('still serves a normal evaluation after the whole table', async () => {
    const res = await d.unix.evaluate({
      policy: 'simple-validation',
      material: { content: exampleMaterial('simple', 'fail.json'), kind: MaterialKind.EVIDENCE },
    });
    assert.equal(res.result!.violations.length, 2);
    assert.equal(
      (await d.tcp.listPolicies()).policies.some((p) => p.name === 'http-example'),
      true,
    );
  });
});
