import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status, type ServiceError } from '@grpc/grpc-js';
import { MaterialKind } from '../../src/gen/policyengine/v1/engine_pb.js';
import { SERVICE_NAME } from '../../src/server/server.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { exampleRequest } from '../helpers/documents.js';
import { example, exampleMaterial, fixture } from '../helpers/paths.js';
import { prng } from '../helpers/random.js';
import { checkHealth } from '../helpers/standard-services.js';

/**
 * Mutation fuzzing of LoadPolicy and Evaluate: documents, modules, materials and args mutated at
 * random, thousands of calls. Every call must end with a status the API defines (never UNKNOWN or
 * INTERNAL), and the daemon must stay healthy. FUZZ_ITERATIONS / FUZZ_SECONDS / FUZZ_SEED run it longer
 * or replay a failure.
 */
const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 2000);
const SECONDS = Number(process.env.FUZZ_SECONDS ?? 25);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);

const DEFINED = new Set([
  status.OK,
  status.INVALID_ARGUMENT,
  status.NOT_FOUND,
  status.DEADLINE_EXCEEDED,
  status.RESOURCE_EXHAUSTED,
  status.PERMISSION_DENIED,
  status.ABORTED,
  status.UNIMPLEMENTED,
  status.FAILED_PRECONDITION,
]);

describe(`mutation fuzzing (seed ${SEED})`, () => {
  let d: Daemon;
  const random = prng(SEED);
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;

  function mutate(bytes: Uint8Array): Uint8Array {
    const out = Buffer.from(bytes);
    switch (int(5)) {
      case 0: // flip bytes
        for (let i = 0, n = 1 + int(8); i < n; i++) out[int(out.length)] = int(256);
        return out;
      case 1: // truncate
        return out.subarray(0, int(out.length));
      case 2: // duplicate a slice
        return Buffer.concat([out, out.subarray(int(out.length), int(out.length))]);
      case 3: // insert random bytes
        return Buffer.concat([out.subarray(0, int(out.length)), Buffer.from(Array.from({ length: 1 + int(16) }, () => int(256))), out]);
      default: // interesting values
        out.write(pick(['null', '[]', '{}', '"', '\\', '\u0000', '-1', '1e309', '\u2028', '*', '@sha256:']), int(out.length));
        return out;
    }
  }

  const documents = ['simple', 'sbom', 'cyclonedx-licenses', 'attestation'].map((n) => exampleRequest(example(n)));
  const modules = [fixture('echo'), fixture('tinygo-surface'), fixture('user-discover')];
  const materials = [
    exampleMaterial('sbom', 'pass.json'),
    exampleMaterial('simple', 'fail.json'),
    exampleMaterial('attestation', 'pass.json'),
    Buffer.from('[1,2,3]'),
  ];
  const argValues = ['a,b', 'a\\,b', 'x\ny', '', ' , ', '\u0000', '😀', 'MIT, Apache-2.0'];

  function loadRequest(): object {
    if (random() < 0.5) {
      const { document, scripts } = pick(documents);
      return {
        source: { case: 'policyDocument', value: random() < 0.7 ? mutate(document) : document },
        scripts: { 'policy.wasm': random() < 0.5 ? mutate(scripts['policy.wasm']!) : scripts['policy.wasm']! },
      };
    }
    return {
      source: { case: 'wasmModule', value: mutate(pick(modules)) },
      name: pick(['fuzz-a', 'fuzz-b', 'Bad Name', '']),
      kinds: [pick([MaterialKind.EVIDENCE, MaterialKind.UNSPECIFIED, 99 as MaterialKind])],
    };
  }

  function evaluateRequest(): object {
    const args: Record<string, string> = {};
    for (let i = int(4); i > 0; i--) args[pick(['allowed', 'max_length', 'x', ''])] = pick(argValues);
    return {
      policy: pick(['simple-validation', 'sbom-validation', 'cyclonedx-licenses', 'git-commit-signature', 'fuzz-a', 'fuzz-b', 'nope', '']),
      material: {
        content: random() < 0.7 ? mutate(pick(materials)) : pick(materials),
        kind: pick([
          MaterialKind.EVIDENCE,
          MaterialKind.SBOM_CYCLONEDX_JSON,
          MaterialKind.ATTESTATION,
          MaterialKind.UNSPECIFIED,
          55 as MaterialKind,
        ]),
        prepared: random() < 0.2,
        annotations: random() < 0.3 ? { [pick(['a', 'chainloop.material.type'])]: pick(argValues) } : {},
      },
      args,
      options: { timeoutMs: 500, includeRawData: random() < 0.3, allowedHostnames: random() < 0.1 ? ['*'] : [] },
    };
  }

  before(async () => {
    d = await startDaemon({ threads: 2, maxQueue: 64 });
    for (const { document, scripts } of documents) await d.tcp.loadPolicy({ source: { case: 'policyDocument', value: document }, scripts });
  });
  after(() => d.stop());

  it('answers every mutated request with a defined status and stays healthy', async () => {
    const codes = new Map<number, number>();
    const deadline = Date.now() + SECONDS * 1000;
    let done = 0;
    while (done < ITERATIONS && Date.now() < deadline) {
      const batch = Array.from({ length: 16 }, () => {
        const client = random() < 0.5 ? d.tcp : d.unix;
        const call = random() < 0.3 ? client.loadPolicy(loadRequest() as never) : client.evaluate(evaluateRequest() as never);
        return call.then(
          () => status.OK,
          (err: ServiceError) => {
            assert.ok(DEFINED.has(err.code), `seed ${SEED}: undefined status ${err.code} (${status[err.code]}): ${err.details}`);
            return err.code;
          },
        );
      });
      for (const code of await Promise.all(batch)) codes.set(code, (codes.get(code) ?? 0) + 1);
      done += batch.length;
    }
    assert.ok(done >= Math.min(ITERATIONS, 500), `only ${done} calls ran`);
    assert.ok(
      (codes.get(status.OK) ?? 0) > 0 && (codes.get(status.INVALID_ARGUMENT) ?? 0) > 0,
      `codes seen: ${JSON.stringify([...codes])}`,
    );
    assert.equal(await checkHealth(d.tcpAddress, SERVICE_NAME), 'SERVING');
    // The fuzzer may have replaced sbom-validation with a mutated version of itself (same name, other
    // script): load the real one again, so the last check evaluates a known policy.
    const { document, scripts } = exampleRequest(example('sbom'));
    await d.tcp.loadPolicy({ source: { case: 'policyDocument', value: document }, scripts });
    const res = await d.unix.evaluate({
      policy: 'sbom-validation',
      material: { content: exampleMaterial('sbom', 'pass.json'), kind: MaterialKind.SBOM_CYCLONEDX_JSON },
    });
    assert.deepEqual(res.result!.violations, []);
  });
});
