import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MaterialKind } from '../../src/gen/policyengine/v1/engine_pb.js';
import { killProcess, type ServeProcess, serveProcess } from '../helpers/serve-process.js';
import { behaviourModule } from '../helpers/wat.js';

const EVALUATIONS = 2_000;
const IN_FLIGHT = 8; // the queue of one worker (serveProcess starts one)
const BUFFER_KB = 64;

/**
 * The daemon logs to stderr, which in production is a pipe (the container runtime's) that may stop
 * being read for a while. With pino's default synchronous destination a write to a full pipe fails
 * EAGAIN and the main thread sleeps 100 ms and tries again — forever, while nobody reads — so every
 * caller's RPCs waited behind a log line. Here the daemon's stderr is not read while it answers
 * thousands of evaluations, each with a decision line.
 */
describe('a log reader that stalls', () => {
  let dir: string;
  let daemon: ServeProcess;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'policyd-log-sink-'));
    daemon = await serveProcess(dir, ['--log-decisions', 'true', '--log-max-buffered-kb', String(BUFFER_KB)]);
    const module = await behaviourModule({ output: JSON.stringify({ violations: [] }) });
    await daemon.client.loadPolicy({ source: { case: 'wasmModule', value: module }, name: 'quiet', kinds: [MaterialKind.EVIDENCE] });
  });
  after(async () => {
    await killProcess(daemon);
    rmSync(dir, { recursive: true, force: true });
  });

  it('stalls no evaluation; the lines beyond the buffer are dropped and counted once the reader is back', async () => {
    daemon.process.stderr!.pause(); // the pipe fills: nothing reads it
    let started = 0;
    const caller = async () => {
      while (started < EVALUATIONS) {
        started++;
        const res = await daemon.client.evaluate(
          { policy: 'quiet', material: { content: Buffer.from('{}'), kind: MaterialKind.EVIDENCE } },
          // A hang detector, not a timing: each evaluation takes well under a millisecond of work.
          { deadlineMs: 20_000 },
        );
        assert.deepEqual(res.result?.violations, []);
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, caller));

    const logged = daemon.log().length;
    const lines = (msg: string) =>
      daemon
        .log()
        .split('\n')
        .filter((l) => l.includes(`"msg":"${msg}"`));
    daemon.process.stderr!.resume();
    let dropped: { dropped: number } | undefined;
    for (let i = 0; i < 200 && !dropped; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const line = lines('log lines dropped (stderr not read)')[0];
      dropped = line ? (JSON.parse(line) as { dropped: number }) : undefined;
    }
    assert.ok(dropped, daemon.log().slice(logged, logged + 2000));
    // Every decision line was either written or counted as dropped.
    const written = lines('decision').length;
    assert.ok(dropped.dropped > 0 && written > 0, `dropped ${dropped.dropped}, written ${written}`);
    assert.equal(written + dropped.dropped, EVALUATIONS);
  });
});
