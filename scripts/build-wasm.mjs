// Builds every policy module from source: the example policies (AssemblyScript, or Go with the standard
// toolchain, built next to their policy.yaml) and the test fixtures (AssemblyScript and WAT, into
// build/fixtures). Nothing built is committed. Unchanged sources are not rebuilt.
import asc from 'assemblyscript/asc';
import wabtInit from 'wabt';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

const SDK_DIR = 'sdk/assemblyscript/assembly';
const ABORT = `${SDK_DIR}/index/policyAbort`;

function newestMtime(paths) {
  return Math.max(...paths.map((p) => statSync(p).mtimeMs));
}

function upToDate(out, sources) {
  return existsSync(out) && statSync(out).mtimeMs >= newestMtime(sources);
}

async function buildAs(entry, out, extra = []) {
  const sources = [entry, ...readdirSync(SDK_DIR).map((f) => join(SDK_DIR, f))];
  if (upToDate(out, sources)) return false;
  mkdirSync(dirname(out), { recursive: true });
  const { error, stderr } = await asc.main(
    [entry, '--outFile', out, '--optimize', '--runtime', 'incremental', '--use', `abort=${ABORT}`, ...extra],
    {},
  );
  if (error) {
    console.error(stderr.toString());
    throw new Error(`asc failed for ${entry}: ${error.message}`);
  }
  return true;
}

/** A Go policy: a WASI reactor with `//go:wasmexport Execute` (Go 1.24+), built by the machine's Go. */
function buildGo(dir, out) {
  const sources = readdirSync(dir)
    .filter((f) => f.endsWith('.go') || f === 'go.mod')
    .map((f) => join(dir, f));
  if (upToDate(out, sources)) return false;
  execFileSync('go', ['build', '-buildmode=c-shared', '-o', basename(out), '.'], {
    cwd: dir,
    env: { ...process.env, GOOS: 'wasip1', GOARCH: 'wasm' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return true;
}

let wabt;
function buildWat(entry, out) {
  if (upToDate(out, [entry])) return false;
  mkdirSync(dirname(out), { recursive: true });
  const module = wabt.parseWat(entry, readFileSync(entry, 'utf8'), { exceptions: true });
  module.validate();
  writeFileSync(out, module.toBinary({}).buffer);
  module.destroy();
  return true;
}

const started = Date.now();
wabt = await wabtInit();
const built = [];
for (const name of readdirSync('examples/policies')) {
  const dir = join('examples/policies', name);
  if (existsSync(join(dir, 'policy.ts')) && (await buildAs(join(dir, 'policy.ts'), join(dir, 'policy.wasm')))) built.push(dir);
  if (existsSync(join(dir, 'go.mod')) && buildGo(dir, join(dir, 'policy.wasm'))) built.push(dir);
}
for (const file of readdirSync('test/fixtures/as')) {
  if (!file.endsWith('.ts')) continue;
  const out = join('build/fixtures', `${basename(file, '.ts')}.wasm`);
  if (await buildAs(join('test/fixtures/as', file), out)) built.push(out);
}
for (const file of readdirSync('test/fixtures/wat')) {
  if (!file.endsWith('.wat')) continue;
  const out = join('build/fixtures', `${basename(file, '.wat')}.wasm`);
  if (buildWat(join('test/fixtures/wat', file), out)) built.push(out);
}
console.log(
  `built ${built.length} module(s) in ${((Date.now() - started) / 1000).toFixed(1)} s${built.length ? `: ${built.join(', ')}` : ''}`,
);
