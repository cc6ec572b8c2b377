import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { MaterialKind } from '../../src/gen/policyengine/v1/engine_pb.js';
import { SERVICE_NAME } from '../../src/server/server.js';
import { grpcError, startDaemon, type Daemon } from '../helpers/daemon.js';
import { fixture } from '../helpers/paths.js';
import { checkHealth, reflectedServices } from '../helpers/standard-services.js';

describe('the service around the engine', () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon();
  });
  after(() => d.stop());

  it('serves grpc.health.v1 on TCP and unix sockets, the engine service only once ready', async () => {
    assert.equal(await checkHealth(d.tcpAddress, ''), 'SERVING');
    assert.equal(await checkHealth(d.unixAddress, SERVICE_NAME), 'SERVING');
    d.server.health.setStatus(SERVICE_NAME, 'NOT_SERVING');
    assert.equal(await checkHealth(d.tcpAddress, SERVICE_NAME), 'NOT_SERVING');
    d.server.markReady();
  });

  it('lists its services through reflection', async () => {
    const services = await reflectedServices(d.tcpAddress);
    assert.ok(services.includes(SERVICE_NAME), services.join(', '));
  });

  it('lists, unloads and forgets policies', async () => {
    await d.tcp.loadPolicy({ source: { case: 'wasmModule', value: fixture('echo') }, name: 'temp', kinds: [MaterialKind.EVIDENCE] });
    assert.ok((await d.unix.listPolicies()).policies.some((p) => p.name === 'temp'));
    const removed = await d.unix.unloadPolicy({ policy: 'temp' });
    assert.equal(removed.policy?.name, 'temp');
    assert.ok(!(await d.tcp.listPolicies()).policies.some((p) => p.name === 'temp'));
    await assert.rejects(
      d.tcp.evaluate({ policy: 'temp', material: { content: Buffer.from('{}'), kind: MaterialKind.EVIDENCE } }),
      grpcError(status.NOT_FOUND, 'POLICY_NOT_FOUND'),
    );
    await assert.rejects(
      d.tcp.unloadPolicy({ policy: 'temp' }),
      grpcError(status.NOT_FOUND, 'POLICY_NOT_FOUND', /policy "temp" is not loaded/),
    );
  });

  it('replaces a name with its new version; the old digest is gone', async () => {
    const v1 = await d.tcp.loadPolicy({ source: { case: 'wasmModule', value: fixture('echo') }, name: 'versioned' });
    const v2 = await d.tcp.loadPolicy({ source: { case: 'wasmModule', value: fixture('user-discover') }, name: 'versioned' });
    assert.notEqual(v1.policy?.digest, v2.policy?.digest);
    const names = (await d.tcp.listPolicies()).policies.filter((p) => p.name === 'versioned').map((p) => p.digest);
    assert.deepEqual(names, [v2.policy?.digest]);
    await assert.rejects(
      d.tcp.evaluate({ policy: v1.policy!.digest, material: { content: Buffer.from('{}'), kind: MaterialKind.EVIDENCE } }),
      grpcError(status.NOT_FOUND, 'POLICY_NOT_FOUND'),
    );
  });

  it('runs a module with the import/export surface of a TinyGo + go-pdk policy in a WASI sandbox', async () => {
    await d.tcp.loadPolicy({
      source: { case: 'wasmModule', value: fixture('tinygo-surface') },
      name: 'tinygo-surface',
      kinds: [MaterialKind.EVIDENCE],
    });
    const res = await d.tcp.evaluate({ policy: 'tinygo-surface', material: { content: Buffer.from('{}'), kind: MaterialKind.EVIDENCE } });
    // Any sandbox property that does not hold adds its own violation.
    assert.deepEqual(
      res.result!.violations.map((v) => v.message),
      ['test violation'],
    );
  });

  it('answers chainloop_discover in extism:host/user with 0 when no discovery backend is configured', async () => {
    await d.tcp.loadPolicy({ source: { case: 'wasmModule', value: fixture('user-discover') }, name: 'user-discover' });
    const res = await d.unix.evaluate({ policy: 'user-discover', material: { content: Buffer.from('{}'), kind: MaterialKind.EVIDENCE } });
    assert.deepEqual(res.result!.skipReasons, ['discover unavailable']);
  });

  it('refuses work with UNAVAILABLE while shutting down', async () => {
    const other = await startDaemon();
    await other.tcp.loadPolicy({ source: { case: 'wasmModule', value: fixture('echo') }, name: 'echo' });
    const draining = other.server.shutdown(2000);
    await assert.rejects(
      other.tcp.evaluate({ policy: 'echo', material: { content: Buffer.from('{}'), kind: MaterialKind.EVIDENCE } }),
      (err: { code?: number }) => err.code === status.UNAVAILABLE,
    );
    await draining;
    await other.engine.close();
    other.tcp.close();
    other.unix.close();
  });
});
