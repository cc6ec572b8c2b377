import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type { Language } from './scaffold.js';

/** asc's `--use abort=…`: the SDK's abort logs the message through Extism instead of importing env.abort. */
const SDK_ABORT = 'abort=~lib/@wasm-policyd/assemblyscript-sdk/assembly/index/policyAbort';

export interface Built {
  language: Language;
  output: string;
  bytes: number;
  seconds: number;
}

/** The project's language: a policy.ts (AssemblyScript) or a go.mod (Go). */
function languageOf(dir: string): Language {
  if (existsSync(join(dir, 'policy.ts'))) return 'assemblyscript';
  if (existsSync(join(dir, 'go.mod'))) return 'go';
  throw new Error(`${dir} has neither a policy.ts (AssemblyScript) nor a go.mod (Go); start one with wasm-policyd init`);
}

/** AssemblyScript with the project's own compiler (its package.json pins it, as a project pins tsc). */
async function buildAssemblyScript(dir: string, output: string): Promise<void> {
  let ascPath: string;
  try {
    // `assemblyscript/asc` is exported for import only, so it is found through the package's own map.
    const manifest = createRequire(join(dir, 'package.json')).resolve('assemblyscript/package.json');
    const { exports } = JSON.parse(readFileSync(manifest, 'utf8')) as { exports: Record<string, { import: string }> };
    ascPath = join(dirname(manifest), exports['./asc']!.import);
  } catch {
    throw new Error(`the AssemblyScript compiler is not installed in ${dir}: run npm install there`);
  }
  const asc = (await import(pathToFileURL(ascPath).href)) as {
    main(args: string[], options: object): Promise<{ error: Error | null; stderr: { toString(): string } }>;
  };
  const { error, stderr } = await asc.main(
    ['policy.ts', '--outFile', output, '--optimize', '--runtime', 'incremental', '--use', SDK_ABORT, '--baseDir', dir],
    {},
  );
  if (error) throw new Error(`asc could not build ${join(dir, 'policy.ts')}:\n${stderr.toString()}`);
}

/** Go with the machine's toolchain, as a WASI reactor exporting Execute. */
async function buildGo(dir: string, output: string): Promise<void> {
  await promisify(execFile)('go', ['build', '-buildmode=c-shared', '-o', output, '.'], {
    cwd: dir,
    env: { ...process.env, GOOS: 'wasip1', GOARCH: 'wasm' },
  }).catch((err: { stderr?: string; message: string }) => {
    throw new Error(`go build failed in ${dir}:\n${err.stderr || err.message}`);
  });
}

/** `wasm-policyd build`: compiles the policy project in `dir` to `policy.wasm`. */
export async function buildPolicy(dir: string): Promise<Built> {
  const root = resolve(dir);
  const language = languageOf(root);
  const output = join(root, 'policy.wasm');
  const started = performance.now();
  if (language === 'assemblyscript') await buildAssemblyScript(root, output);
  else await buildGo(root, output);
  return { language, output, bytes: statSync(output).size, seconds: (performance.now() - started) / 1000 };
}
