#!/usr/bin/env -S node --max-semi-space-size=16 --external-memory-accounted-in-global-limit --expose-gc
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { errorMessage } from '../errors/policyd-error.js';
import { VERSION } from '../version.js';
import { allKindNames } from '../materials/kinds.js';
import { runEval } from './eval.js';
import { commaList, keyValue, keyValueList } from './key-values.js';
import { runLint } from './lint.js';
import { runPolicyTests } from './policy-test.js';
import { runPush } from './push.js';
import { renderBench, runBench } from './bench.js';
import { buildPolicy } from './build.js';
import { runInit } from './init.js';
import { LANGUAGES } from './scaffold.js';
import { REPORT_FORMATS } from './test-report.js';
import { runConfig, runServe } from './serve.js';
import { addSettingOptions } from './settings-options.js';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}

/** How the CLI reaches a registry for oci:// refs (the daemon has its own settings: oci.*). */
function withRegistryOptions(command: Command): Command {
  return command
    .option('--plain-http', 'speak plain HTTP to the registry of an oci:// ref (a local registry)', false)
    .option('--docker-config <file>', 'Docker config file with registry credentials (default: $DOCKER_CONFIG or ~/.docker)');
}

const program = new Command('wasm-policyd')
  .description('Evaluate Chainloop-compatible WebAssembly (Extism) supply-chain policies, locally or as a gRPC daemon.')
  .version(`${VERSION} (node ${process.versions.node})`, '-V, --version', 'print the version')
  .showHelpAfterError();

addSettingOptions(
  program.command('serve').description('run the gRPC daemon (PolicyEngineService, grpc.health.v1, reflection; metrics on the admin port)'),
).action(async (_opts, command: Command) => {
  await runServe(command);
});

addSettingOptions(
  program
    .command('config')
    .description('print the effective daemon configuration (defaults < file < environment < flags), secrets redacted'),
).action((_opts, command: Command) => {
  runConfig(command);
});

withRegistryOptions(program.command('eval'))
  .description('evaluate a policy against a material and print the JSON `chainloop policy devel eval` prints')
  .requiredOption('-p, --policy <policy>', 'policy.yaml or oci:// ref (or, with --server, a loaded policy name or digest)')
  .requiredOption('--material <path>', 'material file (for CONTAINER_IMAGE, an image reference)')
  .option('--kind <kind>', `material kind (${allKindNames().slice(0, 4).join(', ')}, …); detected when omitted`)
  .option('--input <key=value>', 'policy argument, repeatable; a later value for the same key wins', keyValue, {})
  .option('--annotation <key=value,...>', 'material annotations', keyValueList, {})
  .option('--allowed-hostnames <hosts>', 'hosts the policy may reach over HTTP, comma-separated', commaList, [])
  .option('--timeout-ms <ms>', 'evaluation timeout', positiveInt)
  .option('--allow-private-network', 'let the policy reach loopback and private addresses over HTTP', false)
  .option('--referrers <file>', 'YAML/JSON list of referrer items answering chainloop_discover')
  .option('--server <address>', 'evaluate on a running daemon (host:port or unix:///path) instead of in-process')
  .option('--token <token>', 'bearer token for --server (or POLICYD_TOKEN)', process.env.POLICYD_TOKEN)
  .option('--debug', 'add debug_info (policy inputs and raw outputs) to the output', false)
  .option('--fail', 'exit 1 when the policy reports violations (for CI pipelines)', false)
  .action(async (opts) => {
    await runEval({ ...opts, annotation: opts.annotation, allowedHostnames: opts.allowedHostnames });
  });

withRegistryOptions(program.command('lint'))
  .description('check a policy document and its WebAssembly scripts')
  .requiredOption('-p, --policy <path>', 'policy.yaml or oci:// ref', 'policy.yaml')
  .action(async (opts) => {
    if (!(await runLint(opts.policy, opts))) process.exitCode = 1;
  });

withRegistryOptions(program.command('test'))
  .description('run the table tests of a policy (policy.test.yaml beside it: materials, args and expected results)')
  .requiredOption('-p, --policy <path>', 'policy.yaml or oci:// ref', 'policy.yaml')
  .option('--cases <file>', 'test cases (default: policy.test.yaml beside the policy)')
  .addOption(new Option('--format <format>', 'report format').choices(REPORT_FORMATS).default('text'))
  .action(async (opts) => {
    if (!(await runPolicyTests(opts.policy, opts.cases, opts.format, opts))) process.exitCode = 1;
  });

withRegistryOptions(program.command('push'))
  .description('publish a policy (document and modules) to an OCI registry, optionally signed; prints its digest')
  .argument('<ref>', 'oci://registry/repository:tag')
  .requiredOption('-p, --policy <path>', 'policy.yaml', 'policy.yaml')
  .option(
    '--sign-key <file>',
    'PEM private key to sign the pushed manifest with (a cosign-compatible Sigstore bundle; passphrase from POLICYD_SIGN_KEY_PASSPHRASE)',
  )
  .action(async (ref: string, opts) => {
    await runPush(opts.policy, ref, opts);
  });

program
  .command('init')
  .description('start a policy project: policy.yaml, source, sample materials and policy.test.yaml that build and pass as they are')
  .argument('<dir>', 'a new or empty directory')
  .addOption(new Option('--language <language>', 'the policy language').choices(LANGUAGES).default('assemblyscript'))
  .option('--name <name>', 'policy name (default: the directory name)')
  .action(async (dir: string, opts) => {
    await runInit(dir, opts.language, opts.name);
  });

program
  .command('build')
  .description('compile the policy project in a directory to policy.wasm (AssemblyScript with its asc, Go with GOOS=wasip1), then lint it')
  .option('-d, --dir <dir>', 'the project directory', '.')
  .action(async (opts) => {
    const built = await buildPolicy(opts.dir);
    process.stdout.write(`built ${built.output} (${built.language}, ${built.bytes} bytes, ${built.seconds.toFixed(1)} s)\n`);
    if (!(await runLint(join(opts.dir, 'policy.yaml')))) process.exitCode = 1;
  });

withRegistryOptions(program.command('bench'))
  .description('evaluations per second and latency of one policy on one material, in process (like opa bench / kwctl bench)')
  .requiredOption('-p, --policy <policy>', 'policy.yaml or oci:// ref', 'policy.yaml')
  .requiredOption('--material <path>', 'material file')
  .option('--kind <kind>', 'material kind; detected when omitted')
  .option('--input <key=value>', 'policy argument, repeatable', keyValue, {})
  .option('--duration <seconds>', 'seconds measured (after a tenth of that of warm-up)', positiveInt, 5)
  .option('--threads <n>', 'worker threads (default: CPUs - 1)', positiveInt)
  .option('--concurrency <n>', 'evaluations in flight (default: one per thread)', positiveInt)
  .addOption(new Option('--format <format>', 'report format').choices(['text', 'json']).default('text'))
  .action(async (opts) => {
    process.stdout.write(renderBench(await runBench(opts), opts.format));
  });

program.parseAsync().catch((err: unknown) => {
  process.stderr.write(`error: ${errorMessage(err)}\n`);
  process.exit(1);
});
