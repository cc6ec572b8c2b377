import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The repository root (tests run from dist/test/…). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CLI = `${ROOT}dist/src/cli/main.js`;

export function example(name: string, file = 'policy.yaml'): string {
  return `${ROOT}examples/policies/${name}/${file}`;
}

export function exampleMaterial(name: string, file: string): Buffer {
  return readFileSync(example(name, `materials/${file}`));
}

/** A module built from test/fixtures by scripts/build-wasm.mjs. */
export function fixture(name: string): Buffer {
  return readFileSync(`${ROOT}build/fixtures/${name}.wasm`);
}

/** One of Chainloop's own TinyGo-built test policies (../shared/fixtures/chainloop/, read its README). */
export function chainloopFixture(name: 'simple_test_policy' | 'filesystem_test_policy'): Buffer {
  return readFileSync(`${ROOT}../shared/fixtures/chainloop/${name}.wasm`);
}
