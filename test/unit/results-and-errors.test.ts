import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mergeResults } from '../../src/engine/merge.js';
import { PolicydError } from '../../src/errors/policyd-error.js';
import { classifyGuestError } from '../../src/worker/errors.js';
import type { ScriptResult } from '../../src/worker/protocol.js';
import { WASIProcExit } from '../../src/worker/wasi.js';

const result = (r: Partial<ScriptResult>): ScriptResult => ({ skipped: false, skipReason: '', violations: [], ignore: false, ...r });

describe("Chainloop's per-policy merge of script results", () => {
  const cases: { name: string; results: ScriptResult[]; expect: ReturnType<typeof mergeResults> }[] = [
    { name: 'no script applies', results: [], expect: { violations: [], skipped: false, skipReasons: [], ignored: true } },
    {
      name: 'every script asks to be ignored',
      results: [result({ ignore: true, violations: [{ message: 'x' }] })],
      expect: { violations: [], skipped: false, skipReasons: [], ignored: true },
    },
    {
      name: 'violations concatenated in order, with the policy as subject',
      results: [result({ violations: [{ message: 'a' }] }), result({ violations: [{ message: 'b' }, { message: 'c' }] })],
      expect: {
        violations: ['a', 'b', 'c'].map((message) => ({ subject: 'p', message })),
        skipped: false,
        skipReasons: [],
        ignored: false,
      },
    },
    {
      name: 'skipped only when every kept script skipped; reasons only then, empty ones dropped',
      results: [result({ skipped: true, skipReason: 'not mine' }), result({ skipped: true, skipReason: '' })],
      expect: { violations: [], skipped: true, skipReasons: ['not mine'], ignored: false },
    },
    {
      name: 'one script skipped, one not: not skipped, no reasons',
      results: [result({ skipped: true, skipReason: 'not mine' }), result({})],
      expect: { violations: [], skipped: false, skipReasons: [], ignored: false },
    },
    {
      name: 'an ignored script does not count towards skipped',
      results: [result({ ignore: true }), result({ skipped: true, skipReason: 'r' })],
      expect: { violations: [], skipped: true, skipReasons: ['r'], ignored: false },
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(mergeResults('p', c.results), c.expect));
  }
});

describe('classifying what a guest failure throws into Chainloop categories', () => {
  const cases: { name: string; error: unknown; phase?: 'create' | 'call'; exhausted?: boolean; reason: string; message: RegExp }[] = [
    {
      name: 'error_set',
      error: new Error('Plugin-originated error: bad input'),
      reason: 'POLICY_ERROR',
      message: /^policy execution failed: bad input/,
    },
    {
      name: 'error_set while instantiating',
      error: new Error('Plugin-originated error: no'),
      phase: 'create',
      reason: 'POLICY_ERROR',
      message: /failed to create WASM plugin: no/,
    },
    {
      name: 'a denied host',
      error: new Error("HTTP request to 'https://evil.example/x' is not allowed"),
      reason: 'HTTP_FORBIDDEN',
      message: /hostname 'evil.example' is not in the allowed hosts list/,
    },
    { name: 'a host-call deadline', error: new Error('http: context deadline exceeded'), reason: 'POLICY_TIMEOUT', message: /./ },
    {
      name: 'the var store',
      error: new Error('var memory limit exceeded: 1048577 bytes'),
      reason: 'VAR_STORE_FULL',
      message: /Variable store is full/,
    },
    {
      name: 'the memory cap seen by the worker',
      error: new WebAssembly.RuntimeError('unreachable'),
      exhausted: true,
      reason: 'POLICY_MEMORY',
      message: /./,
    },
    {
      name: 'a Go panic recovered by wazero',
      error: new WebAssembly.RuntimeError('runtime error: index out of range [3] with length 2 (recovered by wazero)'),
      reason: 'POLICY_PANIC',
      message: /index out of range \[3\] with length 2/,
    },
    {
      name: 'a plain trap',
      error: new WebAssembly.RuntimeError('unreachable'),
      reason: 'POLICY_PANIC',
      message: /wasm error: unreachable/,
    },
    {
      name: 'a stack overflow',
      error: new RangeError('Maximum call stack size exceeded'),
      reason: 'POLICY_PANIC',
      message: /wasm error: stack overflow/,
    },
    { name: 'proc_exit', error: new WASIProcExit(3), reason: 'POLICY_ERROR', message: /module closed with exit_code\(3\)/ },
    {
      name: 'a daemon error passes through',
      error: new PolicydError('HOST_CALL_LIMIT', 'too many'),
      reason: 'HOST_CALL_LIMIT',
      message: /^too many$/,
    },
  ];
  for (const c of cases) {
    it(`${c.name} → ${c.reason}`, () => {
      const data = classifyGuestError(c.error, c.phase ?? 'call', c.exhausted);
      assert.equal(data.reason, c.reason);
      assert.match(data.message, c.message);
    });
  }
});
