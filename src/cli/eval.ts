import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { JsonObject } from '@bufbuild/protobuf';
import { MaterialKind } from '../gen/policyengine/v1/engine_pb.js';
import { detectKind } from '../materials/detect.js';
import { kindFromName, kindName } from '../materials/kinds.js';
import { parsePolicyDocument, scriptSources } from '../policies/document.js';
import { StaticDiscovery } from '../discovery/static-backend.js';
import { renderEvalOutput, type EvalView } from './eval-output.js';
import { isOciRef } from '../oci/reference.js';
import { PolicyEngineClient } from '../../clients/typescript/src/index.js';
import { withLocalPolicy } from './local-policy.js';
import { splitPin } from '../policies/loader.js';

export interface EvalOptions {
  policy: string;
  material: string;
  kind?: string;
  input: Record<string, string>;
  annotation: Record<string, string>;
  allowedHostnames: string[];
  debug: boolean;
  timeoutMs?: number;
  allowPrivateNetwork: boolean;
  referrers?: string;
  server?: string;
  token?: string;
  /** Exit 1 when the policy reports violations (for CI). */
  fail?: boolean;
  plainHttp?: boolean;
  dockerConfig?: string;
}

/** The material bytes: a file, or for a container image the reference itself. */
async function materialContent(path: string, kind: MaterialKind | undefined): Promise<Uint8Array> {
  if (kind === MaterialKind.CONTAINER_IMAGE && !existsSync(path)) return Buffer.from(path);
  return readFile(path);
}

function resolveKind(name: string | undefined, content: Uint8Array): MaterialKind {
  if (name === undefined) return detectKind(content);
  const kind = kindFromName(name);
  if (kind === undefined || kind === MaterialKind.UNSPECIFIED) {
    throw new Error(`unknown --kind "${name}"; use a Chainloop material type such as EVIDENCE or SBOM_CYCLONEDX_JSON`);
  }
  return kind;
}

function noBranch(kind: MaterialKind): Error {
  return new Error(`no execution branch matched, or all of them were ignored, for kind ${kindName(kind)}`);
}

async function evalLocal(opts: EvalOptions, kind: MaterialKind, content: Uint8Array): Promise<EvalView> {
  const discovery = opts.referrers ? new StaticDiscovery(opts.referrers) : undefined;
  return withLocalPolicy(
    opts.policy,
    async (engine, policy) => {
      const outcome = await engine.evaluate({
        policy: policy.digest,
        material: { content, kind, name: basename(opts.material), annotations: opts.annotation },
        args: opts.input,
        includeRawData: opts.debug,
        allowedHostnames: opts.allowedHostnames,
        timeoutMs: opts.timeoutMs,
      });
      if (outcome.result.ignored) throw noBranch(kind);
      for (const log of outcome.logs) process.stderr.write(`${log.level.toUpperCase()} [${policy.name}] ${log.message}\n`);
      return { findingType: policy.findingType, ...outcome.result, raw: outcome.raw };
    },
    { http: { allowPrivateNetwork: opts.allowPrivateNetwork }, discovery },
    opts,
  );
}

/** Loads the policy file (with the scripts it names) or oci:// ref on the daemon, or uses a loaded name/digest. */
async function remotePolicy(client: PolicyEngineClient, policy: string): Promise<{ ref: string; findingType: string }> {
  if (isOciRef(policy)) {
    // Pulled by the daemon, with its own registry settings and credentials.
    const { policy: loaded } = await client.loadPolicy({ source: { case: 'ref', value: policy } });
    return { ref: loaded!.digest, findingType: loaded!.findingType };
  }
  if (!existsSync(policy)) {
    const listed = await client.listPolicies();
    const found = listed.policies.find((p) => p.name === policy || p.digest === policy);
    return { ref: policy, findingType: found?.findingType ?? '' };
  }
  const bytes = await readFile(policy);
  const scripts: Record<string, Uint8Array> = {};
  for (const source of scriptSources(parsePolicyDocument(bytes, policy))) {
    const location = source.location === undefined ? undefined : splitPin(source.location).location;
    // Remote refs are the daemon's to resolve; local ones travel in the request.
    if (location === undefined || /^(?!file:)[a-z][a-z0-9+.-]*:\/\//i.test(location)) continue;
    const relative = location.replace(/^file:\/\//, '');
    scripts[relative] = await readFile(join(dirname(policy), relative));
  }
  const { policy: loaded } = await client.loadPolicy({ source: { case: 'policyDocument', value: bytes }, scripts });
  return { ref: loaded!.digest, findingType: loaded!.findingType };
}

async function evalRemote(opts: EvalOptions, kind: MaterialKind, content: Uint8Array): Promise<EvalView> {
  const client = new PolicyEngineClient(opts.server!, { token: opts.token });
  try {
    const { ref, findingType } = await remotePolicy(client, opts.policy);
    const res = await client.evaluate({
      policy: ref,
      material: { content, kind, name: basename(opts.material), annotations: opts.annotation },
      args: opts.input,
      options: { includeRawData: opts.debug, allowedHostnames: opts.allowedHostnames, timeoutMs: opts.timeoutMs ?? 0 },
    });
    const result = res.result!;
    if (result.ignored) throw noBranch(kind);
    for (const log of res.logs) process.stderr.write(`[${res.policyName}] ${log.message}\n`);
    return {
      findingType,
      violations: result.violations.map((v) => ({ message: v.message, finding: v.finding as JsonObject | undefined })),
      skipped: result.skipped,
      skipReasons: result.skipReasons,
      raw: res.rawResults,
    };
  } finally {
    client.close();
  }
}

/** `wasm-policyd eval`: what `chainloop policy devel eval` prints, evaluated here or on a running daemon. */
export async function runEval(opts: EvalOptions): Promise<void> {
  const declared = opts.kind === undefined ? undefined : kindFromName(opts.kind);
  const content = await materialContent(opts.material, declared);
  const kind = resolveKind(opts.kind, content);
  const view = opts.server ? await evalRemote(opts, kind, content) : await evalLocal(opts, kind, content);
  process.stdout.write(renderEvalOutput(view, opts.debug));
  if (opts.fail && view.violations.length > 0) process.exitCode = 1;
}
