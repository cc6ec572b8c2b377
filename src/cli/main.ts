#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from '../errors/policyd-error.js';
import { allKindNames } from '../materials/kinds.js';
import { runEval } from './eval.js';
import { commaList, keyValue, keyValueList } from './key-values.js';
import { runLint } from './lint.js';
import { runServe } from './serve.js';

export const DEFAULT_SOCKET = join(tmpdir(), 'wasm-policyd.sock');
export const DEFAULT_TCP = '127.0.0.1:50051';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}

function repeatable(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

const program = new Command('wasm-policyd')
  .description('Evaluate Chainloop-compatible WebAssembly (Extism) supply-chain policies, locally or as a gRPC daemon.')
  .showHelpAfterError();

program
  .command('serve')
  .description('run the gRPC daemon (PolicyEngineService, grpc.health.v1, reflection)')
  .option('--listen <address>', `address to listen on, repeatable: host:port or unix:///path (default: ${DEFAULT_TCP} and unix://${DEFAULT_SOCKET})`, repeatable)
  .option('--policy <path>', 'policy document, or directory of them, to load at start-up (repeatable)', repeatable, [])
  .option('--threads <n>', 'worker threads (default: available CPUs)', positiveInt)
  .option('--max-queue <n>', 'evaluations that may wait for a worker before requests are refused with RESOURCE_EXHAUSTED', positiveInt, 256)
  .option('--timeout-ms <ms>', 'evaluation timeout when a request sets none (Chainloop: 60 s)', positiveInt, 60_000)
  .option('--max-timeout-ms <ms>', 'upper bound for any requested timeout', positiveInt, 600_000)
  .option('--allowed-hostnames <hosts>', 'hosts every policy may reach over HTTP, comma-separated (globs like *.example.com)', commaList, [])
  .option('--file-root <dir>', 'directory file:// policy refs in LoadPolicy may read from', process.cwd())
  .option('--max-receive-mb <mb>', 'largest request accepted, in MiB', positiveInt, 64)
  .option('--no-reflection', 'disable gRPC server reflection')
  .addOption(new Option('--guest-log-level <level>', 'lowest guest log level kept').choices(['trace', 'debug', 'info', 'warn', 'error']).default('info'))
  .option('--grace-ms <ms>', 'how long in-flight calls may finish on SIGTERM', positiveInt, 10_000)
  .action(async (opts) => {
    await runServe({ ...opts, listen: opts.listen ?? [DEFAULT_TCP, `unix://${DEFAULT_SOCKET}`] });
  });

program
  .command('eval')
  .description('evaluate a policy against a material and print the JSON `chainloop policy devel eval` prints')
  .requiredOption('-p, --policy <policy>', 'policy.yaml (or, with --server, a loaded policy name or digest)')
  .requiredOption('--material <path>', 'material file (for CONTAINER_IMAGE, an image reference)')
  .option('--kind <kind>', `material kind (${allKindNames().slice(0, 4).join(', ')}, …); detected when omitted`)
  .option('--input <key=value>', 'policy argument, repeatable; a later value for the same key wins', keyValue, {})
  .option('--annotation <key=value,...>', 'material annotations', keyValueList, {})
  .option('--allowed-hostnames <hosts>', 'hosts the policy may reach over HTTP, comma-separated', commaList, [])
  .option('--timeout-ms <ms>', 'evaluation timeout', positiveInt)
  .option('--server <address>', 'evaluate on a running daemon (host:port or unix:///path) instead of in-process')
  .option('--debug', 'add debug_info (policy inputs and raw outputs) to the output', false)
  .action(async (opts) => {
    await runEval({ ...opts, annotation: opts.annotation, allowedHostnames: opts.allowedHostnames });
  });

program
  .command('lint')
  .description('check a policy document and its WebAssembly scripts')
  .requiredOption('-p, --policy <path>', 'policy.yaml', 'policy.yaml')
  .action(async (opts) => {
    if (!(await runLint(opts.policy))) process.exitCode = 1;
  });

program.parseAsync().catch((err: unknown) => {
  process.stderr.write(`error: ${errorMessage(err)}\n`);
  process.exit(1);
});
