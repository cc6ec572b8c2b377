import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { scaffold, type Language } from './scaffold.js';

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** `wasm-policyd init`: a new policy project in `dir` (which must be empty or absent). */
export async function runInit(dir: string, language: Language, name = basename(resolve(dir))): Promise<void> {
  if (!NAME.test(name)) {
    throw new Error(`"${name}" is not a policy name: use lowercase letters, digits and dashes (give one with --name)`);
  }
  const existing = await readdir(dir).catch(() => []);
  if (existing.length > 0) throw new Error(`${dir} is not empty; give a new directory`);
  for (const [path, text] of Object.entries(scaffold(name, language))) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  const steps = language === 'go' ? [] : ['npm install'];
  process.stdout.write(
    `created policy ${name} (${language}) in ${dir}\nnext:\n${[`cd ${dir}`, ...steps, 'wasm-policyd build', 'wasm-policyd test'].map((s) => `  ${s}`).join('\n')}\n`,
  );
}
