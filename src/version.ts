import { readFileSync } from 'node:fs';

/** This package's manifest: the package root is two levels up from dist/src/ (in the checkout and in the image). */
const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
  devDependencies: Record<string, string>;
};

export const VERSION: string = manifest.version;

/** The AssemblyScript compiler this package builds and tests its policies with (what `init` pins). */
export const ASSEMBLYSCRIPT_VERSION: string = manifest.devDependencies.assemblyscript!;
