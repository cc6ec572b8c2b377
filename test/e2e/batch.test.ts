import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { type BatchOutcome, PolicydError } from '../../clients/typescript/src/index.js';
import { MaterialKind, type EvaluateResponse } from '../../src/gen/policyengine/v1/engine_pb.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { exampleRequest } from '../helpers/documents.js';
import { example, exampleMaterial } from '../helpers/paths.js';

const SBOM = exampleMaterial('sbom', 'fail.json');
const material = (content: Uint8Array = SBOM) => ({ content, kind: MaterialKind.SBOM_CYCLONEDX_JSON });
const messages = (res: EvaluateResponse | undefined) => res?.result?.violations.map((v) => v.message);

async function collect(outcomes: AsyncIterable<BatchOutcome>): Promise<BatchOutcome[]> {
  const all: BatchOutcome[] = [];
  for await (const o of outcomes) all.push(o);
  return all.sort((a, b) => a.index - b.index);
}

async function refusal(outcomes: AsyncIterable<BatchOutcome>): Promise<PolicydError> {
  try {
    await collect(outcomes);
  } catch (err) {
    assert.ok(err instanceof PolicydError, String(err));
    return err;
  }
  assert.fail('the batch was not refused');
}

describe('EvaluateBatch: one material, several policies', () => {
  let d: Daemon;
  before(async () => {
    // One worker and a one-place queue: a batch wider than that must still never refuse its own policies.
    d = await startDaemon({ threads: 1, maxQueue: 1 });
    for (const name of ['sbom', 'cyclonedx-licenses']) {
      const { document, scripts } = exampleRequest(example(name));
      await d.tcp.loadPolicy({ source: { case: 'policyDocument', value: document }, scripts });
    }
  });
  after(() => d.stop());

  it('answers every policy with what Evaluate answers for it, and an error only for the one that cannot run', async () => {
    const policies: { policy: string; args?: Record<string, string> }[] = [
      { policy: 'sbom-validation' },
      { policy: 'cyclonedx-licenses', args: { allowed: 'MIT' } },
      { policy: 'no-such-policy' },
      { policy: 'cyclonedx-licenses', args: { allowed: 'MIT,Apache-2.0', allow_unlicensed: 'true' } },
    ];
    const outcomes = await collect(d.unix.evaluateBatch({ material: material(), policies }));
    assert.deepEqual(
      outcomes.map((o) => o.index),
      [0, 1, 2, 3],
    );
    for (const [i, call] of policies.entries()) {
      if (i === 2) continue;
      const alone = await d.unix.evaluate({ policy: call.policy, args: call.args, material: material() });
      assert.equal(outcomes[i]!.error, undefined, `policy ${i}: ${outcomes[i]!.error?.message}`);
      assert.deepEqual(messages(outcomes[i]!.response), messages(alone), `policy ${i}`);
      assert.equal(outcomes[i]!.response!.policyName, call.policy);
    }
    // The two runs of one policy with different args got different inputs' verdicts: args are per policy.
    assert.notDeepEqual(messages(outcomes[1]!.response), messages(outcomes[3]!.response));
    const missing = outcomes[2]!.error!;
    assert.equal(missing.code, status.NOT_FOUND);
    assert.equal(missing.reason, 'POLICY_NOT_FOUND');
    assert.equal(missing.policy, 'no-such-policy');
    assert.equal(outcomes[2]!.response, undefined);
  });

  it('runs a batch wider than the pool and its queue without refusing any of it', async () => {
    const policies = Array.from({ length: 12 }, (_, i) => ({ policy: i % 2 ? 'sbom-validation' : 'cyclonedx-licenses' }));
    const outcomes = await collect(d.tcp.evaluateBatch({ material: material(), policies }));
    assert.equal(outcomes.length, 12);
    for (const o of outcomes) assert.equal(o.error, undefined, `policy ${o.index}: ${o.error?.reason} ${o.error?.message}`);
  });

  it('gives every policy the material error when the material is not what its kind says', async () => {
    const outcomes = await collect(
      d.unix.evaluateBatch({
        material: material(Buffer.from('not json')),
        policies: [{ policy: 'sbom-validation' }, { policy: 'cyclonedx-licenses' }],
      }),
    );
    assert.equal(outcomes.length, 2);
    for (const o of outcomes) {
      assert.equal(o.error?.reason, 'INVALID_MATERIAL');
      assert.equal(o.error?.code, status.INVALID_ARGUMENT);
      assert.match(o.error!.message, /not valid JSON/);
    }
  });

  it('refuses a batch without policies or without a material, saying what to send', async () => {
    const empty = await refusal(d.unix.evaluateBatch({ material: material(), policies: [] }));
    assert.equal(empty.code, status.INVALID_ARGUMENT);
    assert.equal(empty.reason, 'INVALID_REQUEST');
    assert.match(empty.message, /name from 1 to \d+/);
    const noMaterial = await refusal(d.unix.evaluateBatch({ policies: [{ policy: 'sbom-validation' }] }));
    assert.equal(noMaterial.reason, 'INVALID_REQUEST');
    assert.match(noMaterial.message, /EvaluateBatchRequest\.material is required/);
  });
});
