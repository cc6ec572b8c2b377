import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import {
  type ReferrerItemSchema,
  ReferrerService,
  ReferrerServiceDiscoverPrivateResponseSchema,
  type ReferrerServiceDiscoverPrivateRequest,
} from '../../src/gen/controlplane/v1/referrer_pb.js';
import { MaterialKind } from '../../src/gen/policyengine/v1/engine_pb.js';
import { GrpcDiscovery } from '../../src/discovery/grpc-backend.js';
import { StaticDiscovery } from '../../src/discovery/static-backend.js';
import { serviceDefinition } from '../../src/server/service-definition.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { exampleRequest } from '../helpers/documents.js';
import { example, exampleMaterial, fixture } from '../helpers/paths.js';

const IMAGE = `sha256:${'b'.repeat(64)}`;
const referrers: MessageInitShape<typeof ReferrerItemSchema> = {
  digest: IMAGE,
  kind: 'CONTAINER_IMAGE',
  createdAt: { seconds: 1700000000n, nanos: 5 },
  references: [
    {
      digest: 'sha256:a1',
      kind: 'ATTESTATION',
      downloadable: true,
      metadata: { name: 'build', project: 'shop', organization: 'acme', hasPolicyViolations: 'true' },
    },
    { digest: 'sha256:a2', kind: 'ATTESTATION', metadata: { hasPolicyViolations: 'false' } },
    { digest: 'sha256:s1', kind: 'SBOM_CYCLONEDX_JSON', annotations: { b: '2', a: '1' } },
  ],
};
/** What Chainloop's Go encoding/json makes of `referrers`. */
const GO_JSON =
  `{"digest":"${IMAGE}","kind":"CONTAINER_IMAGE","references":[` +
  '{"digest":"sha256:a1","kind":"ATTESTATION","downloadable":true,"metadata":{"hasPolicyViolations":"true","name":"build","organization":"acme","project":"shop"}},' +
  '{"digest":"sha256:a2","kind":"ATTESTATION","metadata":{"hasPolicyViolations":"false"}},' +
  '{"digest":"sha256:s1","kind":"SBOM_CYCLONEDX_JSON","annotations":{"a":"1","b":"2"}}],' +
  '"created_at":{"seconds":1700000000,"nanos":5}}';

async function loadPolicies(d: Daemon): Promise<void> {
  const { document, scripts } = exampleRequest(example('discover'));
  await d.tcp.loadPolicy({ source: { case: 'policyDocument', value: document }, scripts });
  await d.tcp.loadPolicy({ source: { case: 'wasmModule', value: fixture('discover-echo') }, name: 'discover-echo' });
}

const echo = (d: Daemon, digest: string, kind?: string) =>
  d.tcp
    .evaluate({
      policy: 'discover-echo',
      material: { content: Buffer.from(JSON.stringify({ digest, kind })), kind: MaterialKind.EVIDENCE },
    })
    .then((r) => r.result!.violations[0]!.message);

describe('chainloop_discover from a Chainloop ReferrerService over gRPC', () => {
  let referrerServer: Server;
  let d: Daemon;
  const seen: { digest: string; kind: string; auth: string }[] = [];

  before(async () => {
    referrerServer = new Server();
    referrerServer.addService(serviceDefinition(ReferrerService), {
      discoverPrivate(call: ServerUnaryCall<ReferrerServiceDiscoverPrivateRequest, unknown>, callback: sendUnaryData<unknown>) {
        seen.push({ digest: call.request.digest, kind: call.request.kind, auth: String(call.metadata.get('authorization')[0]) });
        if (call.request.digest !== IMAGE) return callback({ code: 5, details: 'not found' }, null);
        callback(null, create(ReferrerServiceDiscoverPrivateResponseSchema, { result: referrers }));
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      referrerServer.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    d = await startDaemon({ discovery: new GrpcDiscovery({ address: `127.0.0.1:${port}`, token: 'secret-token' }) });
    await loadPolicies(d);
  });
  after(async () => {
    await d.stop();
    referrerServer.forceShutdown();
  });

  it("hands the guest Go's JSON of the ReferrerItem, passing digest, kind and the bearer token", async () => {
    assert.equal(await echo(d, IMAGE, 'CONTAINER_IMAGE'), GO_JSON);
    assert.deepEqual(seen.at(-1), { digest: IMAGE, kind: 'CONTAINER_IMAGE', auth: 'Bearer secret-token' });
  });

  it('answers 0 when the control plane answers an error', async () => {
    assert.equal(await echo(d, 'sha256:unknown'), '<0>');
    assert.deepEqual(seen.at(-1), { digest: 'sha256:unknown', kind: '', auth: 'Bearer secret-token' });
  });

  it("runs Chainloop's discover example against it", async () => {
    const res = await d.unix.evaluate({
      policy: 'policy-builtins',
      material: { content: exampleMaterial('discover', 'image.txt'), kind: MaterialKind.CONTAINER_IMAGE },
    });
    assert.deepEqual(
      res.result!.violations.map((v) => v.message),
      ['attestation with digest sha256:a1 contains policy violations [name: build, project: shop, org: acme]'],
    );
  });
});

describe('chainloop_discover from a static referrers file', () => {
  let d: Daemon;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'policyd-referrers-'));
    const file = join(dir, 'referrers.yaml');
    writeFileSync(
      file,
      `- digest: "${IMAGE}"\n  kind: CONTAINER_IMAGE\n  createdAt: "2023-11-14T22:13:20.000000005Z"\n  references:\n    - {digest: "sha256:a1", kind: ATTESTATION, downloadable: true, metadata: {name: build, project: shop, organization: acme, hasPolicyViolations: "true"}}\n    - {digest: "sha256:a2", kind: ATTESTATION, metadata: {hasPolicyViolations: "false"}}\n    - {digest: "sha256:s1", kind: SBOM_CYCLONEDX_JSON, annotations: {b: "2", a: "1"}}\n`,
    );
    d = await startDaemon({ discovery: new StaticDiscovery(file) });
    await loadPolicies(d);
  });
  after(async () => {
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds an item by digest, filtered by kind', async () => {
    assert.equal(await echo(d, IMAGE), GO_JSON);
    assert.equal(await echo(d, IMAGE, 'GIT_HEAD'), '<0>');
    assert.equal(await echo(d, 'sha256:none'), '<0>');
  });

  it('refuses a referrers file that is not a list, naming it', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'digest: x\n');
    assert.throws(() => new StaticDiscovery(bad), /referrers file .*bad\.yaml must hold a list of referrer items/);
  });
});
