import { readFileSync } from 'node:fs';

/** This package's version: the package root is two levels up from dist/src/ (in the checkout and in the image). */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;
