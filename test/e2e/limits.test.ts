import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { type ClientHttp2Session, connect, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Client, credentials, type ServiceError, status } from '@grpc/grpc-js';
import { create, toBinary } from '@bufbuild/protobuf';
import { EvaluateRequestSchema, MaterialKind } from '../../src/gen/policyengine/v1/engine_pb.js';
import { grpcError, startDaemon, type Daemon } from '../helpers/daemon.js';
import { exampleRequest } from '../helpers/documents.js';
import { example, exampleMaterial, fixture } from '../helpers/paths.js';
import { prng } from '../helpers/random.js';
import { wat } from '../helpers/wat.js';

const evidence = (content = '{}') => ({ content: Buffer.from(content), kind: MaterialKind.EVIDENCE });
const TIMEOUT = /^policy execution failed: Policy execution timeout exceeded\n\nHint: The policy took too long to execute/;

async function loadBasics(d: Daemon): Promise<void> {
  await d.tcp.loadPolicy({ source: { case: 'wasmModule', value: fixture('spin') }, name: 'spin' });
  const { document, scripts } = exampleRequest(example('simple'));
  await d.tcp.loadPolicy({ source: { case: 'policyDocument', value: document }, scripts });
}

/** A daemon with one worker and the basic policies, given to `body`, then stopped. */
async function withOneWorker(body: (d: Daemon) => Promise<void>, maxQueue?: number): Promise<void> {
  const d = await startDaemon({ threads: 1, maxQueue });
  try {
    await loadBasics(d);
    await body(d);
  } finally {
    await d.stop();
  }
}

/** An evaluation that passes, with time enough to wait for the worker. */
async function passes(d: Daemon): Promise<void> {
  const res = await d.tcp.evaluate({ policy: 'simple-validation', material: evidence('{"message":"ok"}'), options: { timeoutMs: 20_000 } });
  assert.deepEqual(res.result!.violations, []);
}

describe('deadlines', () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon({ threads: 2 });
    await loadBasics(d);
  });
  after(() => d.stop());

  it('stops a guest that spins past options.timeout_ms while other evaluations complete', async () => {
    const spin = d.tcp.evaluate({ policy: 'spin', material: evidence(), options: { timeoutMs: 400 } });
    const others = Array.from({ length: 6 }, () =>
      d.unix.evaluate({ policy: 'simple-validation', material: evidence('{"message":"ok"}') }),
    );
    await assert.rejects(spin, grpcError(status.DEADLINE_EXCEEDED, 'POLICY_TIMEOUT', TIMEOUT));
    for (const res of await Promise.all(others)) assert.deepEqual(res.result!.violations, []);
  });

  it("frees the worker when the client's own deadline passes", () =>
    withOneWorker(async (d) => {
      await assert.rejects(
        d.tcp.evaluate({ policy: 'spin', material: evidence() }, { deadlineMs: 300 }),
        (err: { code?: number }) => err.code === status.DEADLINE_EXCEEDED,
      );
      // With one worker, this only completes if the spinning guest was stopped.
      await passes(d);
    }));
});

/** A guest that busy-waits `ms` on WASI's monotonic clock, then returns. */
const busy = (ms: number) => `(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func $now (result i64) (drop (call $clock (i32.const 1) (i64.const 1) (i32.const 0))) (i64.load (i32.const 0)))
  (func (export "Execute") (result i32) (local $end i64)
    (local.set $end (i64.add (call $now) (i64.const ${ms * 1_000_000})))
    (loop $wait (br_if $wait (i64.lt_u (call $now) (local.get $end))))
    (i32.const 0)))`;

describe('cancellation', () => {
  it('frees the worker when the client cancels', () =>
    withOneWorker(async (d) => {
      const started = d.engine.pool.workersStarted;
      const cancel = new AbortController();
      const spinning = d.tcp.evaluate({ policy: 'spin', material: evidence() }, { signal: cancel.signal });
      setTimeout(() => cancel.abort(), 300);
      await assert.rejects(spinning, (err: { code?: number }) => err.code === status.CANCELLED);
      // With one worker, this only completes if the cancelled guest was stopped.
      await passes(d);
      assert.equal(d.engine.pool.workersStarted, started + 1, 'the spinning guest was stopped with its worker');
    }));

  it('lets a cancelled evaluation that ends within the grace end, keeping its worker', () =>
    withOneWorker(async (d) => {
      await d.tcp.loadPolicy({ source: { case: 'wasmModule', value: await wat(busy(30)) }, name: 'busy' });
      const started = d.engine.pool.workersStarted;
      for (let i = 0; i < 3; i++) {
        const cancel = new AbortController();
        const running = d.tcp.evaluate({ policy: 'busy', material: evidence() }, { signal: cancel.signal });
        setTimeout(() => cancel.abort(), 10);
        await assert.rejects(running, (err: { code?: number }) => err.code === status.CANCELLED);
      }
      await passes(d);
      assert.equal(d.engine.pool.workersStarted, started, 'no worker was stopped');
    }));
});

describe('evaluations waiting in a worker (DEFAULTS.tasksPerWorker)', () => {
  it('sends again, not lost, the evaluations waiting behind one that is stopped with its worker', () =>
    withOneWorker(async (d) => {
      const started = d.engine.pool.workersStarted;
      const spin = d.tcp.evaluate({ policy: 'spin', material: evidence(), options: { timeoutMs: 400 } });
      // With one worker these wait in it, behind the spinning guest.
      const behind = Array.from({ length: 3 }, () => passes(d));
      await assert.rejects(spin, grpcError(status.DEADLINE_EXCEEDED, 'POLICY_TIMEOUT', TIMEOUT));
      await Promise.all(behind);
      assert.equal(d.engine.pool.workersStarted, started + 1, 'one worker stopped, for the spinning guest');
    }));

  it('never starts an evaluation stopped while it waits in a worker', () =>
    withOneWorker(async (d) => {
      await d.tcp.loadPolicy({ source: { case: 'wasmModule', value: await wat(busy(300)) }, name: 'busy' });
      const started = d.engine.pool.workersStarted;
      const first = d.tcp.evaluate({ policy: 'busy', material: evidence() });
      // Cancelled (and stopped, after the 100 ms grace) while the first still runs: had it started
      // afterwards, it would spin on with nothing left to stop it, and the last evaluation would wait
      // behind it until its own timeout.
      const cancel = new AbortController();
      const waiting = d.tcp.evaluate({ policy: 'spin', material: evidence(), options: { timeoutMs: 20_000 } }, { signal: cancel.signal });
      setTimeout(() => cancel.abort(), 50);
      await assert.rejects(waiting, (err: { code?: number }) => err.code === status.CANCELLED);
      // It ran to its end: a guest that sets no output.
      await assert.rejects(first, (err: { reason?: string }) => err.reason === 'INVALID_OUTPUT');
      await passes(d);
      assert.equal(d.engine.pool.workersStarted, started, 'no worker was stopped');
    }));
});

describe('evaluations that stop, queue and are cancelled, mixed at random', () => {
  const SEED = Number(process.env.MIX_SEED ?? Date.now() % 1_000_000);
  it(`answers every call as its kind says, loses no worker for good, and keeps serving (seed ${SEED})`, async () => {
    const d = await startDaemon({ threads: 2 });
    try {
      await loadBasics(d);
      await d.tcp.loadPolicy({ source: { case: 'wasmModule', value: await wat(busy(20)) }, name: 'busy' });
      const random = prng(SEED);
      const started = d.engine.pool.workersStarted;
      let mayStop = 0;
      const call = (): Promise<void> => {
        const kind = Math.floor(random() * 4);
        if (kind === 0) return passes(d);
        if (kind === 1) {
          // Runs to its end: a guest that sets no output.
          return assert.rejects(
            d.tcp.evaluate({ policy: 'busy', material: evidence() }),
            (err: { reason?: string }) => err.reason === 'INVALID_OUTPUT',
          );
        }
        mayStop++;
        if (kind === 2) {
          return assert.rejects(
            d.tcp.evaluate({ policy: 'spin', material: evidence(), options: { timeoutMs: 100 + Math.floor(random() * 200) } }),
            grpcError(status.DEADLINE_EXCEEDED, 'POLICY_TIMEOUT'),
          );
        }
        // Cancelled at a random moment: a spinning guest can only end so; a busy one may have answered first.
        const policy = random() < 0.5 ? 'spin' : 'busy';
        const cancel = new AbortController();
        setTimeout(() => cancel.abort(), Math.floor(random() * 80));
        return assert.rejects(
          d.tcp.evaluate({ policy, material: evidence() }, { signal: cancel.signal }),
          (err: { code?: number; reason?: string }) =>
            err.code === status.CANCELLED || (policy === 'busy' && err.reason === 'INVALID_OUTPUT'),
        );
      };
      // Waves of 8: within the default queue (8 per worker), so nothing is refused as OVERLOADED.
      for (let wave = 0; wave < 12; wave++) await Promise.all(Array.from({ length: 8 }, call));
      await passes(d);
      const stopped = d.engine.pool.workersStarted - started;
      assert.ok(stopped <= mayStop, `${stopped} workers started for ${mayStop} evaluations that could stop one`);
    } finally {
      await d.stop();
    }
  });
});

/**
 * An Evaluate call on a raw HTTP/2 session: its message is sent at once, its stream ended only by `end`
 * (grpc-js clients end it with the message).
 */
function rawCall(
  session: ClientHttp2Session,
  message: Uint8Array,
): { end: () => void; answer: Promise<{ status: number; message: string }> } {
  const stream = session.request({
    ':method': 'POST',
    ':path': '/policyengine.v1.PolicyEngineService/Evaluate',
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  stream.write(frame);
  const answer = new Promise<{ status: number; message: string }>((resolve, reject) => {
    const status = (h: IncomingHttpHeaders) =>
      h['grpc-status'] !== undefined &&
      resolve({ status: Number(h['grpc-status']), message: decodeURIComponent(String(h['grpc-message'])) });
    stream.on('trailers', status);
    stream.on('response', status);
    stream.on('error', reject);
    stream.on('close', () => reject(new Error(`stream closed (code ${stream.rstCode}) before a status`)));
    stream.resume();
  });
  return { end: () => stream.end(), answer };
}

/** One worker with one place in its queue, and a raw HTTP/2 session to the daemon (ended after `body`). */
function withQueueOfOne(body: (d: Daemon, session: ClientHttp2Session) => Promise<void>): Promise<void> {
  return withOneWorker(async (d) => {
    const session = connect(`http://${d.tcpAddress}`);
    try {
      await body(d, session);
    } finally {
      session.destroy();
    }
  }, 1);
}

describe('back-pressure', () => {
  it('refuses evaluations beyond the queue at once with RESOURCE_EXHAUSTED, then recovers', () =>
    withOneWorker(async (d) => {
      // The deadline covers time in the queue too, so both end with DEADLINE_EXCEEDED.
      const running = assert.rejects(
        d.tcp.evaluate({ policy: 'spin', material: evidence(), options: { timeoutMs: 1500 } }),
        grpcError(status.DEADLINE_EXCEEDED, 'POLICY_TIMEOUT'),
      );
      const queued = assert.rejects(
        d.tcp.evaluate({ policy: 'spin', material: evidence(), options: { timeoutMs: 1500 } }),
        grpcError(status.DEADLINE_EXCEEDED, 'POLICY_TIMEOUT'),
      );
      await assert.rejects(
        d.tcp.evaluate({ policy: 'simple-validation', material: evidence('{"message":"x"}') }),
        grpcError(status.RESOURCE_EXHAUSTED, 'OVERLOADED', /the evaluation queue is full \(1 waiting on 1 workers\)/),
      );
      // Refused before the message is decoded (src/server/admission.ts): bytes that are no request at
      // all get OVERLOADED, not INVALID_REQUEST, and the connection goes on serving.
      const raw = new Client(d.tcpAddress, credentials.createInsecure());
      const undecodable = await new Promise<ServiceError | null>((resolve) =>
        raw.makeUnaryRequest(
          '/policyengine.v1.PolicyEngineService/Evaluate',
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.from([0xff, 0xff, 0xff]),
          (err) => resolve(err),
        ),
      );
      raw.close();
      assert.ok(grpcError(status.RESOURCE_EXHAUSTED, 'OVERLOADED', /the evaluation queue is full/)(undecodable));
      await Promise.all([running, queued]);
      const res = await d.tcp.evaluate({ policy: 'simple-validation', material: evidence('{"message":"x"}') });
      assert.deepEqual(res.result!.violations, []);
    }, 1));

  it('refuses the calls of one burst beyond the queue before decoding them, counting those let through before it', () =>
    withQueueOfOne(async (d, session) => {
      // Ten calls on one connection whose streams end only after every message has arrived (as from a
      // client or proxy that ends a stream in a frame of its own), so the daemon judges every message
      // before any handler runs. Two spinning evaluations fill the worker and the queue; the eight after
      // them are bytes that decode to no request: one judged by the empty queue and let through would be
      // answered INVALID_REQUEST by its handler, not OVERLOADED.
      const spin = toBinary(
        EvaluateRequestSchema,
        create(EvaluateRequestSchema, { policy: 'spin', material: evidence(), options: { timeoutMs: 1500 } }),
      );
      const messages = [spin, spin, ...Array.from({ length: 8 }, () => new Uint8Array([0xff, 0xff, 0xff]))];
      const calls = messages.map((message) => rawCall(session, message));
      await new Promise((r) => setTimeout(r, 100)); // the messages arrive; ended at once, they would come with their ends
      for (const call of calls) call.end();
      const [first, second, ...rest] = await Promise.all(calls.map((call) => call.answer));
      assert.equal(first!.status, status.DEADLINE_EXCEEDED, first!.message);
      assert.equal(second!.status, status.DEADLINE_EXCEEDED, second!.message);
      for (const refused of rest) {
        assert.equal(refused.status, status.RESOURCE_EXHAUSTED, refused.message);
        assert.match(refused.message, /the evaluation queue is full/);
      }
      // Nothing is left counted: the queue takes two again.
      const again = await Promise.all([
        d.tcp.evaluate({ policy: 'simple-validation', material: evidence('{"message":"x"}') }),
        d.tcp.evaluate({ policy: 'simple-validation', material: evidence('{"message":"y"}') }),
      ]);
      for (const res of again) assert.deepEqual(res.result!.violations, []);
    }));

  it('holds no place in the queue for a call whose message came but whose stream never ends', () =>
    withQueueOfOne(async (d, session) => {
      const open = rawCall(
        session,
        toBinary(EvaluateRequestSchema, create(EvaluateRequestSchema, { policy: 'spin', material: evidence() })),
      );
      await new Promise((r) => setTimeout(r, 100)); // its message arrives and is let through; its handler never runs
      // The worker and the one place in the queue are both free for two spinning evaluations.
      const spin = () => d.tcp.evaluate({ policy: 'spin', material: evidence(), options: { timeoutMs: 300 } });
      const both = await Promise.allSettled([spin(), spin()]);
      for (const r of both) assert.ok(r.status === 'rejected' && grpcError(status.DEADLINE_EXCEEDED, 'POLICY_TIMEOUT')(r.reason));
      open.answer.catch(() => {}); // ended by the session's end, after this
    }));
});

describe('HTTP from guests', () => {
  let d: Daemon;
  let web: Server;
  let port: number;
  const check = (path: string, allowedHostnames: string[]) =>
    d.tcp.evaluate({
      policy: 'http-example',
      material: evidence(JSON.stringify({ check_url: `http://127.0.0.1:${port}${path}` })),
      options: { allowedHostnames },
    });

  before(async () => {
    web = createServer((req, res) => {
      if (req.url === '/json') res.writeHead(200, { 'content-type': 'application/json' }).end('{"products":[]}');
      else if (req.url === '/redirect') res.writeHead(302, { location: `http://127.0.0.2:${port}/json` }).end();
      else if (req.url === '/hop') res.writeHead(301, { location: '/json' }).end();
      else if (req.url === '/big') res.writeHead(200).end(Buffer.alloc(4096, 0x20));
      else res.writeHead(404).end('missing');
    });
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    port = (web.address() as AddressInfo).port;
    // The test server is on loopback, which the SSRF guard refuses unless told otherwise.
    d = await startDaemon({
      http: { allowPrivateNetwork: true, maxResponseBytes: 1024 },
      permittedRequestHosts: ['127.0.0.*', 'localhost', 'example.com'],
    });
    const { document, scripts } = exampleRequest(example('http'));
    await d.tcp.loadPolicy({ source: { case: 'policyDocument', value: document }, scripts });
  });
  after(async () => {
    await d.stop();
    web.close();
  });

  it('performs requests to allowed hosts (exact or glob), following allowed redirects', async () => {
    assert.deepEqual((await check('/json', ['127.0.0.1'])).result!.violations, []);
    assert.deepEqual((await check('/hop', ['127.0.0.*'])).result!.violations, []);
  });

  it('lets the policy see the status of a failed request', async () => {
    const res = await check('/missing', ['127.0.0.1']);
    assert.deepEqual(
      res.result!.violations.map((v) => v.message),
      ['failed to fetch data: HTTP request failed with status 404'],
    );
  });

  it('refuses a host outside the allow-list with PERMISSION_DENIED and Chainloop message and hint', async () => {
    await assert.rejects(
      check('/json', ['example.com']),
      grpcError(
        status.PERMISSION_DENIED,
        'HTTP_FORBIDDEN',
        new RegExp(
          `^policy execution failed: HTTP request blocked - hostname '127.0.0.1' is not in the allowed hosts list\\n\\nHint: Add the hostname using --allowed-hostnames flag or configure it in your policy engine.\\nAttempted URL: http://127.0.0.1:${port}/json$`,
        ),
      ),
    );
  });

  it('re-checks every redirect against the allow-list', async () => {
    await assert.rejects(
      check('/redirect', ['127.0.0.1']),
      grpcError(status.PERMISSION_DENIED, 'HTTP_FORBIDDEN', /hostname '127.0.0.2' is not in the allowed hosts list/),
    );
  });

  it('refuses a response larger than the cap', async () => {
    await assert.rejects(
      check('/big', ['127.0.0.1']),
      grpcError(status.ABORTED, 'POLICY_ERROR', /HTTP response body from 'http:\/\/127.0.0.1:\d+\/big' exceeds the limit of 1024 bytes/),
    );
  });

  it('refuses request allowed_hostnames outside what the server permits', async () => {
    await assert.rejects(
      check('/json', ['*']),
      grpcError(
        status.PERMISSION_DENIED,
        'HOSTNAME_NOT_PERMITTED',
        /allowed_hostnames \* are outside what this server lets requests allow/,
      ),
    );
  });

  it('refuses private addresses by default, by literal and after DNS resolution', async () => {
    const guarded = await startDaemon();
    try {
      const { document, scripts } = exampleRequest(example('http'));
      await guarded.tcp.loadPolicy({ source: { case: 'policyDocument', value: document }, scripts });
      const evaluate = (url: string, host: string) =>
        guarded.tcp.evaluate({
          policy: 'http-example',
          material: evidence(JSON.stringify({ check_url: url })),
          options: { allowedHostnames: [host] },
        });
      await assert.rejects(
        evaluate(`http://127.0.0.1:${port}/json`, '127.0.0.1'),
        grpcError(status.PERMISSION_DENIED, 'HTTP_FORBIDDEN', /hostname '127.0.0.1' resolves to the private address 127.0.0.1/),
      );
      await assert.rejects(
        evaluate(`http://localhost:${port}/json`, 'localhost'),
        grpcError(status.PERMISSION_DENIED, 'HTTP_FORBIDDEN', /hostname 'localhost' resolves to the private address (127.0.0.1|::1)/),
      );
    } finally {
      await guarded.stop();
    }
  });

  it('keeps serving after all of that', async () => {
    const { document, scripts } = exampleRequest(example('sbom'));
    await d.tcp.loadPolicy({ source: { case: 'policyDocument', value: document }, scripts });
    const res = await d.unix.evaluate({
      policy: 'sbom-validation',
      material: { content: exampleMaterial('sbom', 'pass.json'), kind: MaterialKind.SBOM_CYCLONEDX_JSON },
    });
    assert.equal(res.result!.skipped, false);
  });
});
