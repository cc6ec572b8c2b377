import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { goJson } from '../../src/cli/go-json.js';
import { CLI, ROOT, example } from '../helpers/paths.js';
import { checkHealth } from '../helpers/standard-services.js';
import { wat } from '../helpers/wat.js';

const exec = promisify(execFile);
const expected = (name: string) => readFileSync(`${ROOT}test/expected/${name}`, 'utf8');
const material = (name: string, file: string) => example(name, `materials/${file}`);

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], { cwd: ROOT });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('wasm-policyd eval prints what chainloop policy devel eval prints', () => {
  const cases: [string, string[]][] = [
    ['simple-fail.json', ['-p', example('simple'), '--material', material('simple', 'fail.json'), '--kind', 'EVIDENCE']],
    [
      'simple-pass-debug.json',
      [
        '-p',
        example('simple'),
        '--material',
        material('simple', 'pass.json'),
        '--kind',
        'EVIDENCE',
        '--debug',
        '--annotation',
        'team=red,tier=1',
      ],
    ],
    ['sbom-skipped.json', ['-p', example('sbom'), '--material', material('sbom', 'not-cyclonedx.json'), '--kind', 'SBOM_CYCLONEDX_JSON']],
    [
      'licenses-fail.json',
      [
        '-p',
        example('cyclonedx-licenses'),
        '--material',
        material('cyclonedx-licenses', 'fail.json'),
        '--input',
        'allowed=GPL-3.0-only',
        '--input',
        'allowed=MIT, Apache-2.0',
      ],
    ],
  ];
  for (const [file, args] of cases) {
    it(`byte for byte: ${file}`, async () => {
      const out = await cli('eval', ...args);
      assert.equal(out.code, 0, out.stderr);
      assert.equal(out.stdout, expected(file));
    });
  }

  it('detects the kind when --kind is omitted', async () => {
    const out = await cli('eval', '-p', example('sbom'), '--material', material('sbom', 'fail.json'));
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(JSON.parse(out.stdout).result.violations, [
      "component 'left-pad' missing version",
      'component at index 2 missing name',
    ]);
  });

  it('exits 1 with --fail when the policy reports violations, 0 when it does not (the output is the same)', async () => {
    const failing = await cli('eval', '-p', example('sbom'), '--material', material('sbom', 'fail.json'), '--fail');
    assert.equal(failing.code, 1);
    assert.equal(JSON.parse(failing.stdout).result.violations.length, 2);
    const passing = await cli('eval', '-p', example('sbom'), '--material', material('sbom', 'pass.json'), '--fail');
    assert.equal(passing.code, 0, passing.stderr);
  });

  it('escapes <, > and & as Go does', () => {
    assert.equal(goJson({ a: '<b> & \u2028' }), '{\n   "a": "\\u003cb\\u003e \\u0026 \\u2028"\n}\n');
  });

  it('fails with the reason when no script applies to the kind, or the kind is unknown', async () => {
    const none = await cli('eval', '-p', example('sbom'), '--material', material('simple', 'pass.json'), '--kind', 'EVIDENCE');
    assert.equal(none.code, 1);
    assert.match(none.stderr, /error: no execution branch matched, or all of them were ignored, for kind EVIDENCE/);
    const unknown = await cli('eval', '-p', example('sbom'), '--material', material('simple', 'pass.json'), '--kind', 'SBOM');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /unknown --kind "SBOM"/);
  });
});

describe('wasm-policyd --version', () => {
  it('prints the package version and the Node it runs on', async () => {
    const out = await cli('--version');
    assert.equal(out.code, 0);
    const { version } = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string };
    assert.equal(out.stdout.trim(), `${version} (node ${process.versions.node})`);
  });
});

describe('wasm-policyd lint', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'policyd-lint-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('accepts a valid policy', async () => {
    const out = await cli('lint', '-p', example('http'));
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^policy is valid! \(http-example, 1 script\(s\), sha256:[0-9a-f]{64}\)/);
  });

  it('notes a script that gets a new instance per evaluation because it cannot be reset', async () => {
    const policy = join(dir, 'tables.yaml');
    writeFileSync(
      policy,
      'apiVersion: chainloop.dev/v1\nkind: Policy\nmetadata: {name: tables}\nspec:\n  policies:\n    - kind: EVIDENCE\n      ref: tables.wasm\n',
    );
    const module =
      await wat(`(module (import "extism:host/env" "output_set" (func (param i64 i64))) (memory (export "memory") 1) (table 1 funcref)
      (func (export "Execute") (result i32) (table.set (i32.const 0) (ref.null func)) (i32.const 0)))`);
    writeFileSync(join(dir, 'tables.wasm'), module);
    const out = await cli('lint', '-p', policy);
    assert.equal(out.code, 0, out.stderr);
    assert.match(
      out.stdout,
      /^note: script sha256:[0-9a-f]{64} \(EVIDENCE\) gets a new instance for every evaluation.*because it changes a table/m,
    );
    const resettable = await cli('lint', '-p', example('http'));
    assert.doesNotMatch(resettable.stdout, /note:/);
  });

  it('reports a script that is not WebAssembly', async () => {
    const policy = join(dir, 'policy.yaml');
    writeFileSync(
      policy,
      'apiVersion: chainloop.dev/v1\nkind: Policy\nmetadata: {name: broken}\nspec:\n  policies:\n    - kind: EVIDENCE\n      ref: policy.rego\n',
    );
    writeFileSync(join(dir, 'policy.rego'), 'package main\n');
    const out = await cli('lint', '-p', policy);
    assert.equal(out.code, 1);
    assert.match(out.stderr, /spec\.policies\.0 \(policy\.rego\) of policy "broken" is not WebAssembly .*only WASM scripts are supported/);
    assert.match(out.stderr, /1 issue found/);
  });
});

describe('wasm-policyd serve', () => {
  it('serves the example policies on a unix socket, answers eval --server like local eval, and drains on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'policyd-serve-'));
    const socket = `unix://${join(dir, 'policyd.sock')}`;
    const daemon = spawn(process.execPath, [CLI, 'serve', '--listen', socket, '--policy', 'examples/policies', '--threads', '1'], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, POLICYD_ADMIN_LISTEN: '' },
    });
    let log = '';
    daemon.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => daemon.on('exit', resolve));
    try {
      for (let i = 0; i < 100 && !log.includes('"msg":"ready"'); i++) await new Promise((r) => setTimeout(r, 100));
      assert.match(log, /"policies":7,"msg":"ready"/);
      assert.equal(await checkHealth(socket, 'policyengine.v1.PolicyEngineService'), 'SERVING');
      const byName = await cli(
        'eval',
        '--server',
        socket,
        '-p',
        'simple-validation',
        '--material',
        material('simple', 'fail.json'),
        '--kind',
        'EVIDENCE',
      );
      assert.equal(byName.stdout, expected('simple-fail.json'), byName.stderr);
      const byFile = await cli(
        'eval',
        '--server',
        socket,
        '-p',
        example('simple'),
        '--material',
        material('simple', 'pass.json'),
        '--kind',
        'EVIDENCE',
        '--debug',
        '--annotation',
        'team=red,tier=1',
      );
      assert.equal(byFile.stdout, expected('simple-pass-debug.json'), byFile.stderr);
      daemon.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.match(log, /"signal":"SIGTERM".*"msg":"draining"/);
    } finally {
      daemon.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('wasm-policyd test', () => {
  it("runs an example's table tests", async () => {
    const out = await cli('test', '-p', example('simple'));
    assert.equal(out.code, 0, out.stdout + out.stderr);
    assert.match(out.stdout, /^ok - accepts a plain message$/m);
    assert.match(out.stdout, /^4 passed, 0 failed$/m);
    const junit = await cli('test', '-p', example('simple'), '--format', 'junit');
    assert.equal(junit.code, 0);
    assert.match(junit.stdout, /<testsuites tests="4" failures="0"/);
  });

  it('reports a case whose expectation does not hold, and exits 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'policyd-cases-'));
    try {
      const cases = join(dir, 'cases.yaml');
      writeFileSync(
        cases,
        `cases:\n  - name: wrong on purpose\n    material: ${material('sbom', 'fail.json')}\n    expect: { violations: [], skipped: true }\n`,
      );
      const out = await cli('test', '-p', example('sbom'), '--cases', cases);
      assert.equal(out.code, 1);
      assert.match(
        out.stdout,
        /^not ok - wrong on purpose: violations \["component 'left-pad' missing version","component at index 2 missing name"\], expected \[\]; skipped false, expected true$/m,
      );
      assert.match(out.stdout, /^0 passed, 1 failed$/m);

      // The same run for CI systems: TAP, JUnit XML and JSON carry the same verdict and problem.
      const tap = await cli('test', '-p', example('sbom'), '--cases', cases, '--format', 'tap');
      assert.equal(tap.code, 1);
      assert.match(tap.stdout, /^TAP version 14\n1\.\.1\nnot ok 1 - wrong on purpose\n {2}---\n {2}message: "violations \[/);
      const junit = await cli('test', '-p', example('sbom'), '--cases', cases, '--format', 'junit');
      assert.match(junit.stdout, /<testsuite name="sbom-validation" tests="1" failures="1"/);
      assert.match(
        junit.stdout,
        /<testcase classname="sbom-validation" name="wrong on purpose" time="[\d.]+">\n {6}<failure message="violations \[&#34;component &#39;left-pad&#39; missing version&#34;/,
      );
      const json = JSON.parse((await cli('test', '-p', example('sbom'), '--cases', cases, '--format', 'json')).stdout);
      assert.deepEqual(
        [json.policy, json.passed, json.failed, json.cases[0].name, json.cases[0].ok],
        ['sbom-validation', 0, 1, 'wrong on purpose', false],
      );
      assert.match(json.cases[0].problem, /^violations \[/);
      writeFileSync(cases, 'cases:\n  - name: typo\n    material: x.json\n    expected: {}\n');
      const bad = await cli('test', '-p', example('sbom'), '--cases', cases);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /cases\.0: Unrecognized key: "expected"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
