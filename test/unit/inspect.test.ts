import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PolicydError } from '../../src/errors/policyd-error.js';
import { compilePolicyModule } from '../../src/wasm/inspect.js';
import { chainloopFixture } from '../helpers/paths.js';
import { wat } from '../helpers/wat.js';

const EXECUTE = '(func (export "Execute") (result i32) i32.const 0)';

describe('the load check (compilePolicyModule): what a policy module must be', () => {
  it('tells what the module uses: WASI, HTTP, discover (Chainloop’s TinyGo policy: WASI only)', async () => {
    const facts = await compilePolicyModule(chainloopFixture('simple_test_policy'), 'tinygo', 16);
    assert.deepEqual(
      { wasi: facts.usesWasi, http: facts.usesHttp, discover: facts.usesDiscover },
      { wasi: true, http: false, discover: false },
    );
    const guest = await wat(`(module
      (import "extism:host/env" "http_request" (func (param i64 i64) (result i64)))
      (import "env" "chainloop_discover" (func (param i64 i64) (result i64)))
      ${EXECUTE})`);
    const http = await compilePolicyModule(guest, 'guest', 16);
    assert.deepEqual(
      { wasi: http.usesWasi, http: http.usesHttp, discover: http.usesDiscover },
      { wasi: false, http: true, discover: true },
    );
  });

  const refused: { name: string; module: () => Promise<Uint8Array> | Uint8Array; reason: string; why: RegExp }[] = [
    {
      name: 'bytes that are not WebAssembly',
      module: () => Buffer.from('#!/bin/sh'),
      reason: 'INVALID_MODULE',
      why: /does not start with \\0asm/,
    },
    {
      name: 'a component (version 0d)',
      module: () => Buffer.from([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0]),
      reason: 'INVALID_MODULE',
      why: /components are not supported/,
    },
    {
      name: 'a module that does not compile',
      module: () => Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0xff]),
      reason: 'INVALID_MODULE',
      why: /does not compile/,
    },
    {
      name: 'no Execute export (Chainloop’s own words)',
      module: () => wat('(module (func (export "execute") (result i32) i32.const 0))'),
      reason: 'MISSING_EXECUTE',
      why: /missing required 'Execute' function export/,
    },
    {
      name: 'an import the host does not provide',
      module: () => wat(`(module (import "env" "system" (func (param i32))) ${EXECUTE})`),
      reason: 'UNSATISFIED_IMPORT',
      why: /"env" "system" \(function\).*Extism kernel/,
    },
    {
      name: 'an imported memory',
      module: () => wat(`(module (import "env" "memory" (memory 1)) ${EXECUTE})`),
      reason: 'UNSATISFIED_IMPORT',
      why: /"env" "memory" \(memory\)/,
    },
    {
      name: 'WASI without an exported memory',
      module: () => wat(`(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))) ${EXECUTE})`),
      reason: 'INVALID_MODULE',
      why: /imports WASI but exports no memory/,
    },
    {
      name: 'a minimum memory above the cap',
      module: () => wat(`(module (memory (export "memory") 32) ${EXECUTE})`),
      reason: 'POLICY_MEMORY',
      why: /declares 32 pages \(2 MiB\) of initial memory, more than the 1 MiB memory limit/,
    },
  ];
  for (const c of refused) {
    it(`refuses ${c.name}`, async () => {
      await assert.rejects(compilePolicyModule(await c.module(), 'policy.wasm', 16), (err: unknown) => {
        assert.ok(err instanceof PolicydError, String(err));
        assert.equal(err.reason, c.reason, err.message);
        assert.match(err.message, c.why);
        return true;
      });
    });
  }
});
