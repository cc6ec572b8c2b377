import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { create, toBinary } from '@bufbuild/protobuf';
import { status } from '@grpc/grpc-js';
import { EvaluateRequestSchema, MaterialKind } from '../../src/gen/policyengine/v1/engine_pb.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { exampleRequest } from '../helpers/documents.js';
import { example } from '../helpers/paths.js';
import { prng } from '../helpers/random.js';

/**
 * Below the gRPC library: raw HTTP/2 streams with malformed gRPC framing, headers and bodies, random
 * mutations of a valid request's bytes, and bytes that are not HTTP/2 at all. Every stream must end
 * (with a gRPC status or a stream reset), and the daemon must answer a valid call afterwards.
 * PROTOCOL_FUZZ_ITERATIONS / PROTOCOL_FUZZ_SEED run it longer or replay a failure.
 */
const ITERATIONS = Number(process.env.PROTOCOL_FUZZ_ITERATIONS ?? 400);
const SEED = Number(process.env.PROTOCOL_FUZZ_SEED ?? Date.now() % 1_000_000);
const EVALUATE = '/policyengine.v1.PolicyEngineService/Evaluate';

function frame(body: Uint8Array, flag = 0, length = body.byteLength): Buffer {
  const header = Buffer.alloc(5);
  header[0] = flag;
  header.writeUInt32BE(length >>> 0, 1);
  return Buffer.concat([header, body]);
}

interface Ending {
  grpc?: number;
  http?: number;
  reset?: string;
}

/** One raw stream; resolves when it ends, however it ends. */
function stream(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body: Buffer | null,
  abortAfterWrite = false,
): Promise<Ending> {
  return new Promise((resolve) => {
    const req = session.request({ ':method': 'POST', ':path': EVALUATE, 'content-type': 'application/grpc', te: 'trailers', ...headers });
    const ending: Ending = {};
    req.on('response', (h) => {
      ending.http = Number(h[':status']);
      if (h['grpc-status'] !== undefined) ending.grpc = Number(h['grpc-status']);
    });
    req.on('trailers', (t) => {
      if (t['grpc-status'] !== undefined) ending.grpc = Number(t['grpc-status']);
    });
    req.on('data', () => {});
    req.on('error', (err: Error) => (ending.reset = err.message));
    req.on('close', () => resolve(ending));
    if (body === null) req.end();
    else if (abortAfterWrite) req.write(body, () => req.close(http2.constants.NGHTTP2_CANCEL));
    else req.end(body);
  });
}

describe(`protocol fuzzing below grpc-js (seed ${SEED})`, () => {
  let d: Daemon;
  let session: http2.ClientHttp2Session;
  const valid = Buffer.from(
    toBinary(
      EvaluateRequestSchema,
      create(EvaluateRequestSchema, {
        policy: 'simple-validation',
        material: { content: Buffer.from('{"message":"ok"}'), kind: MaterialKind.EVIDENCE },
      }),
    ),
  );

  before(async () => {
    d = await startDaemon({ threads: 1, maxEventLoopLagMs: 0 });
    const { document, scripts } = exampleRequest(example('simple'));
    await d.tcp.loadPolicy({ source: { case: 'policyDocument', value: document }, scripts });
    session = http2.connect(`http://${d.tcpAddress}`);
  });
  after(async () => {
    session.close();
    await d.stop();
  });

  const stillServes = async () => {
    const res = await d.tcp.evaluate({
      policy: 'simple-validation',
      material: { content: Buffer.from('{"message":"ok"}'), kind: MaterialKind.EVIDENCE },
    });
    assert.deepEqual(res.result!.violations, []);
  };

  /**
   * Named malformations and the status each gets. INTERNAL appears for two, both decided by grpc-js
   * before the daemon sees the call (docs/compatibility.md lists them): gzip bytes that do not
   * decompress, and a grpc-timeout header that does not parse.
   */
  const cases: { name: string; headers?: http2.OutgoingHttpHeaders; body: Buffer | null; abort?: boolean; expect: Ending }[] = [
    { name: 'a valid request', body: frame(valid), expect: { http: 200, grpc: status.OK } },
    { name: 'no body', body: null, expect: { http: 200, grpc: status.UNIMPLEMENTED } },
    { name: 'a length prefix cut short', body: Buffer.from([0, 0]), expect: { http: 200, grpc: status.UNIMPLEMENTED } },
    {
      name: 'a message shorter than its prefix says',
      body: frame(valid.subarray(0, 5), 0, valid.byteLength),
      expect: { http: 200, grpc: status.UNIMPLEMENTED },
    },
    { name: 'a length of 4 GiB', body: frame(Buffer.alloc(3), 0, 0xffffffff), expect: { http: 200, grpc: status.RESOURCE_EXHAUSTED } },
    {
      name: 'bytes that are not protobuf',
      body: frame(Buffer.from([0xff, 0xff, 0xff])),
      expect: { http: 200, grpc: status.INVALID_ARGUMENT },
    },
    {
      name: 'two messages on a unary call',
      body: Buffer.concat([frame(valid), frame(valid)]),
      expect: { http: 200, grpc: status.UNIMPLEMENTED },
    },
    {
      name: 'an unsupported grpc-encoding',
      headers: { 'grpc-encoding': 'zstd-x' },
      body: frame(valid, 1),
      expect: { http: 200, grpc: status.UNIMPLEMENTED },
    },
    {
      name: 'gzip bytes that do not decompress (grpc-js: INTERNAL)',
      headers: { 'grpc-encoding': 'gzip' },
      body: frame(valid, 1),
      expect: { http: 200, grpc: status.INTERNAL },
    },
    {
      name: 'a grpc-timeout that does not parse (grpc-js: INTERNAL)',
      headers: { 'grpc-timeout': 'soon' },
      body: frame(valid),
      expect: { http: 200, grpc: status.INTERNAL },
    },
    {
      name: 'a method that does not exist',
      headers: { ':path': '/policyengine.v1.PolicyEngineService/Nope' },
      body: frame(valid),
      expect: { http: 200, grpc: status.UNIMPLEMENTED },
    },
    { name: 'a content-type that is not gRPC', headers: { 'content-type': 'text/plain' }, body: frame(valid), expect: { http: 415 } },
  ];
  for (const c of cases) {
    it(`answers ${c.name}`, async () => {
      const ending = await stream(session, c.headers ?? {}, c.body, c.abort);
      assert.deepEqual({ http: ending.http, grpc: ending.grpc }, { http: c.expect.http, grpc: c.expect.grpc });
    });
  }

  it('survives streams reset half way through a message', async () => {
    for (let i = 0; i < 20; i++) await stream(session, {}, frame(valid).subarray(0, 5 + (i % valid.byteLength)), true);
    await stillServes();
  });

  it(`ends every stream of ${ITERATIONS} random mutations of a valid request with a status or a reset, never INTERNAL, and keeps serving`, async () => {
    const random = prng(SEED);
    const statuses = new Map<string, number>();
    for (let i = 0; i < ITERATIONS; i++) {
      const bytes = frame(valid);
      const flips = 1 + Math.floor(random() * 4);
      for (let f = 0; f < flips; f++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      const cut = random() < 0.2 ? bytes.subarray(0, Math.floor(random() * bytes.length)) : bytes;
      const ending = await stream(session, {}, cut);
      const key = ending.grpc !== undefined ? status[ending.grpc]! : ending.reset ? 'reset' : `http ${ending.http}`;
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
      assert.notEqual(ending.grpc, status.INTERNAL, `seed ${SEED}, iteration ${i}: INTERNAL for ${cut.toString('hex')}`);
      assert.notEqual(ending.grpc, status.UNKNOWN, `seed ${SEED}, iteration ${i}: UNKNOWN for ${cut.toString('hex')}`);
    }
    console.log(`protocol fuzz, seed ${SEED}: ${JSON.stringify(Object.fromEntries(statuses))}`);
    await stillServes();
  });

  it('closes connections that do not speak HTTP/2, and keeps serving', async () => {
    const [host, port] = [d.tcpAddress.split(':')[0]!, Number(d.tcpAddress.split(':')[1])];
    const random = prng(SEED + 1);
    const inputs = [
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), // the preface, then nothing valid
      Buffer.concat([
        Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
        Buffer.from(Array.from({ length: 64 }, () => Math.floor(random() * 256))),
      ]),
      Buffer.from(Array.from({ length: 256 }, () => Math.floor(random() * 256))),
    ];
    for (const input of inputs) {
      await new Promise<void>((resolve) => {
        const socket = connect(port, host, () => socket.end(input));
        socket.on('data', () => {});
        socket.on('error', () => resolve());
        socket.on('close', () => resolve());
        socket.setTimeout(5000, () => socket.destroy());
      });
    }
    await stillServes();
  });
});
