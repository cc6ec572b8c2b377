import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI, ROOT } from '../helpers/paths.js';

/** The CLI as an author runs it, in `cwd`; its exit code and output. */
function cli(cwd: string, ...args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe('the author workflow: init, build, test, eval, bench — in AssemblyScript and in Go', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'policyd-author-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const language of ['assemblyscript', 'go'] as const) {
    it(`a new ${language} policy builds and passes its own tests as it is`, () => {
      const project = join(dir, `licenses-${language}`);
      const init = cli(dir, 'init', project, '--language', language, '--name', `versions-${language === 'go' ? 'go' : 'as'}`);
      assert.equal(init.status, 0, init.stderr);
      if (language === 'assemblyscript') {
        // The SDK arrives as an npm package (packed from sdk/assemblyscript), with its own dependencies.
        execFileSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: project, stdio: 'ignore' });
        assert.ok(existsSync(join(project, 'node_modules/@wasm-policyd/assemblyscript-sdk/assembly/index.ts')));
        assert.ok(existsSync(join(project, 'node_modules/@extism/as-pdk')));
      }
      const build = cli(project, 'build');
      assert.equal(build.status, 0, build.stderr);
      assert.match(build.stdout, /built .*policy\.wasm/);
      assert.match(build.stdout, /policy is valid!/);
      const test = cli(project, 'test');
      assert.equal(test.status, 0, `${test.stdout}${test.stderr}`);
      assert.equal(test.stdout.match(/^ok /gm)?.length, 3, test.stdout);
      const failing = cli(project, 'eval', '--material', 'materials/fail.json', '-p', 'policy.yaml', '--fail');
      assert.equal(failing.status, 1);
      assert.deepEqual(JSON.parse(failing.stdout).result.violations, ["component 'mystery' has no version"]);
      const bench = cli(project, 'bench', '--material', 'materials/pass.json', '--duration', '1', '--threads', '1', '--format', 'json');
      assert.equal(bench.status, 0, bench.stderr);
      const report = JSON.parse(bench.stdout);
      assert.ok(report.evaluations > 0 && report.failures === 0, bench.stdout);
      assert.ok(report.latencyMs.p50 > 0 && report.latencyMs.p50 <= report.latencyMs.p99);
    });
  }

  it('a broken change fails the build with the compiler’s message, and the tests catch a wrong verdict', () => {
    const project = join(dir, 'licenses-go');
    const source = readFileSync(join(project, 'main.go'), 'utf8');
    writeFileSync(join(project, 'main.go'), source.replace('func main() {}', 'func main() { undefinedThing() }'));
    const broken = cli(project, 'build');
    assert.notEqual(broken.status, 0);
    assert.match(broken.stderr, /undefined: undefinedThing/);
    writeFileSync(join(project, 'main.go'), source.replace('has no version', 'lacks a version'));
    assert.equal(cli(project, 'build').status, 0);
    const test = cli(project, 'test', '--format', 'tap');
    assert.equal(test.status, 1);
    assert.match(test.stdout, /not ok 2 - flags a component without a version/);
  });

  it('refuses a directory that is not empty and a name that is not a policy name', () => {
    const full = join(dir, 'full');
    mkdirSync(full);
    writeFileSync(join(full, 'keep.txt'), 'mine');
    const r = cli(dir, 'init', full);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /is not empty/);
    assert.equal(readFileSync(join(full, 'keep.txt'), 'utf8'), 'mine');
    assert.match(cli(dir, 'init', join(dir, 'Bad_Name')).stderr, /not a policy name/);
  });

  it('the AssemblyScript SDK packs as an npm package with its sources and README', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json'], { cwd: join(ROOT, 'sdk/assemblyscript'), encoding: 'utf8' });
    const files = (JSON.parse(out)[0].files as { path: string }[]).map((f) => f.path).sort();
    assert.deepEqual(files, ['README.md', 'assembly/index.ts', 'index.ts', 'package.json']);
  });
});
