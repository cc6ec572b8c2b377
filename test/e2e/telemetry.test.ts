import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { PolicyEngineClient } from '../../clients/typescript/src/index.js';
import { loadConfig } from '../../src/config/load.js';
import { startDaemon, type RunningDaemon } from '../../src/daemon/daemon.js';
import { MaterialKind } from '../../src/gen/policyengine/v1/engine_pb.js';
import { capturedLogger } from '../helpers/logs.js';
import { example } from '../helpers/paths.js';

interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: { key: string; value: Record<string, unknown> }[];
  status?: { code?: number; message?: string };
}

/** An OTLP/HTTP receiver (JSON encoding), as an OpenTelemetry Collector's otlp receiver accepts it. */
function otlpReceiver(): { server: Server; spans: ReceivedSpan[]; resources: Record<string, unknown>[] } {
  const spans: ReceivedSpan[] = [];
  const resources: Record<string, unknown>[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      assert.equal(req.url, '/v1/traces');
      assert.match(String(req.headers['content-type']), /application\/json/);
      const body = JSON.parse(Buffer.concat(chunks).toString()) as {
        resourceSpans: { resource: Record<string, unknown>; scopeSpans: { spans: ReceivedSpan[] }[] }[];
      };
      for (const rs of body.resourceSpans) {
        resources.push(rs.resource);
        for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return { server, spans, resources };
}

const attribute = (span: ReceivedSpan, key: string) => {
  const value = span.attributes.find((a) => a.key === key)?.value;
  return value && Object.values(value)[0];
};

describe('OpenTelemetry traces and decision logs', () => {
  let receiver: ReturnType<typeof otlpReceiver>;
  let web: Server;
  let daemon: RunningDaemon;
  let client: PolicyEngineClient;
  let webPort: number;
  const { logger, lines } = capturedLogger();
  const traceId = createHash('sha256').update('a trace').digest('hex').slice(0, 32);
  const callerSpan = '00f067aa0ba902b7';

  before(async () => {
    receiver = otlpReceiver();
    await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', resolve));
    web = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    webPort = (web.address() as AddressInfo).port;
    const config = loadConfig({
      env: {},
      flags: {
        listen: ['127.0.0.1:0'],
        policies: [example('http'), example('simple')],
        watch: false,
        threads: 1,
        'http.allowPrivateNetwork': true,
        'http.allowedHostnames': ['127.0.0.1'],
        'tracing.endpoint': `http://127.0.0.1:${(receiver.server.address() as AddressInfo).port}/v1/traces`,
        'log.decisionMask': ['args.token', 'caller.subject'],
        'auth.evaluateTokens': ['an-evaluate-token-for-tests'],
        'auth.anonymous': 'admin',
      },
    });
    daemon = await startDaemon(config, logger);
    client = new PolicyEngineClient(daemon.addresses[0]!, { token: 'an-evaluate-token-for-tests' });
  });
  after(async () => {
    client.close();
    web.close();
    receiver.server.close();
  });

  it('continues the caller’s trace: RPC, evaluation, queue wait, instantiation, execution and each guest HTTP call', async () => {
    const res = await client.evaluate(
      {
        policy: 'http-example',
        material: { content: Buffer.from(JSON.stringify({ check_url: `http://127.0.0.1:${webPort}/ok` })), kind: MaterialKind.EVIDENCE },
      },
      { metadata: { traceparent: `00-${traceId}-${callerSpan}-01` } },
    );
    assert.deepEqual(res.result!.violations, []);
    const failing = await client.evaluate({
      policy: 'simple-validation',
      material: { content: readFileSync(example('simple', 'materials/fail.json')), kind: MaterialKind.EVIDENCE },
      args: { max_length: '5', token: 'do-not-log-me' },
    });
    assert.ok(failing.result!.violations.length > 0);
    await daemon.stop(); // flushes the exporter
    const spans = receiver.spans.filter((s) => s.traceId === traceId);
    const byName = (name: string) => {
      const found = spans.filter((s) => s.name === name);
      assert.equal(found.length, 1, `one ${name} span in ${spans.map((s) => s.name).join(', ')}`);
      return found[0]!;
    };
    const rpc = byName('policyengine.v1.PolicyEngineService/Evaluate');
    assert.equal(rpc.parentSpanId, callerSpan);
    assert.equal(rpc.kind, 2, 'SERVER');
    assert.equal(attribute(rpc, 'rpc.system'), 'grpc');
    const evaluate = byName('evaluate');
    assert.equal(evaluate.parentSpanId, rpc.spanId);
    assert.equal(attribute(evaluate, 'policyd.policy'), 'http-example');
    assert.equal(attribute(evaluate, 'policyd.evaluation_id'), res.evaluationId);
    const script = byName('script');
    assert.equal(script.parentSpanId, evaluate.spanId);
    const phases = ['queue', 'instantiate', 'execute'].map(byName);
    for (const phase of phases) assert.equal(phase.parentSpanId, script.spanId);
    for (let i = 1; i < phases.length; i++) assert.ok(BigInt(phases[i - 1]!.endTimeUnixNano) <= BigInt(phases[i]!.startTimeUnixNano));
    const http = byName('http_request');
    assert.equal(http.parentSpanId, script.spanId);
    assert.equal(attribute(http, 'url.full'), `http://127.0.0.1:${webPort}/ok`);
    assert.equal(Number(attribute(http, 'http.response.status_code')), 200);
    // The guest made the call while it ran.
    assert.ok(BigInt(http.startTimeUnixNano) >= BigInt(phases[2]!.startTimeUnixNano));
    assert.ok(BigInt(http.endTimeUnixNano) <= BigInt(phases[2]!.endTimeUnixNano));
    const service = JSON.stringify(receiver.resources[0]);
    assert.match(service, /"service.name".*"wasm-policyd"/);
  });

  it('writes decision lines with the material digest, arguments, caller and violations, masked where configured', () => {
    const decision = lines.find((l) => l.msg === 'decision' && l.policy === 'http-example')!;
    assert.ok(decision, 'a decision line');
    const material = Buffer.from(JSON.stringify({ check_url: `http://127.0.0.1:${webPort}/ok` }));
    assert.equal(decision.materialDigest, `sha256:${createHash('sha256').update(material).digest('hex')}`);
    assert.deepEqual(decision.caller, { role: 'evaluate', subject: '[masked]' });
    assert.equal(decision.violationCount, 0);
    assert.deepEqual(decision.violations, []);
    assert.equal(decision.kind, 'EVIDENCE');
    const failed = lines.find((l) => l.msg === 'decision' && l.policy === 'simple-validation')!;
    assert.deepEqual(failed.args, { max_length: '5', token: '[masked]' });
    assert.ok((failed.violationCount as number) > 0);
    assert.equal((failed.violations as string[]).length, failed.violationCount);
    assert.ok(!JSON.stringify(lines).includes('do-not-log-me'));
  });
});
