import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { anyUnpack } from '@bufbuild/protobuf/wkt';
import { ErrorInfoSchema } from '../../src/gen/google/rpc/error_details_pb.js';
import { StatusSchema } from '../../src/gen/google/rpc/status_pb.js';
import { EvaluateRequestSchema, EvaluateResponseSchema, MaterialKind } from '../../src/gen/policyengine/v1/engine_pb.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { exampleRequest } from '../helpers/documents.js';
import { ROOT, example, exampleMaterial } from '../helpers/paths.js';

const exec = promisify(execFile);
const skipped = existsSync(`${ROOT}build/python/SKIPPED`) ? readFileSync(`${ROOT}build/python/SKIPPED`, 'utf8').trim() : undefined;
const EVALUATE = '/policyengine.v1.PolicyEngineService/Evaluate';

interface RawResult {
  code: string;
  details: string;
  response: string;
  status_details: string;
}

/** One call through grpc's C core (python3-grpcio), with a request serialised here. */
async function call(address: string, request: Parameters<typeof create<typeof EvaluateRequestSchema>>[1]): Promise<RawResult> {
  const bytes = toBinary(EvaluateRequestSchema, create(EvaluateRequestSchema, request));
  const { stdout } = await exec('/usr/bin/python3', [
    `${ROOT}clients/python/raw_call.py`,
    address,
    EVALUATE,
    Buffer.from(bytes).toString('hex'),
  ]);
  return JSON.parse(stdout) as RawResult;
}

describe('a second gRPC implementation (grpc C core via python3-grpcio)', {
  skip: skipped && `python client not available: ${skipped}`,
}, () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon();
    const { document, scripts } = exampleRequest(example('sbom'));
    await d.tcp.loadPolicy({ source: { case: 'policyDocument', value: document }, scripts });
  });
  after(() => d.stop());

  for (const transport of ['tcp', 'unix'] as const) {
    it(`evaluates over ${transport}`, async () => {
      const res = await call(d[`${transport}Address`], {
        policy: 'sbom-validation',
        material: { content: exampleMaterial('sbom', 'fail.json'), kind: MaterialKind.SBOM_CYCLONEDX_JSON },
      });
      assert.equal(res.code, 'OK', res.details);
      const decoded = fromBinary(EvaluateResponseSchema, Buffer.from(res.response, 'hex'));
      assert.deepEqual(
        decoded.result!.violations.map((v) => v.message),
        ["component 'left-pad' missing version", 'component at index 2 missing name'],
      );
    });
  }

  it('receives the status, message and google.rpc.ErrorInfo trailer of a failure', async () => {
    const res = await call(d.unixAddress, { policy: 'nope', material: { content: Buffer.from('{}'), kind: MaterialKind.EVIDENCE } });
    assert.equal(res.code, 'NOT_FOUND');
    assert.match(res.details, /policy "nope" is not loaded/);
    const status = fromBinary(StatusSchema, Buffer.from(res.status_details, 'hex'));
    assert.equal(status.code, 5);
    assert.equal(anyUnpack(status.details[0]!, ErrorInfoSchema)?.reason, 'POLICY_NOT_FOUND');
  });
});
