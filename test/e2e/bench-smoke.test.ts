import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { ROOT } from '../helpers/paths.js';

describe('bench harness (smoke run: every step for a fraction of a second; no timing is asserted)', () => {
  it('runs end to end and reports every target', async () => {
    const out = mkdtempSync(join(tmpdir(), 'policyd-bench-smoke-'));
    try {
      await promisify(execFile)(
        process.execPath,
        ['--disable-warning=ExperimentalWarning', `${ROOT}dist/bench/run.js`, '--smoke', '--out', out],
        { cwd: ROOT, maxBuffer: 2 ** 24 },
      );
      const results = JSON.parse(readFileSync(join(out, 'results.smoke.json'), 'utf8'));
      assert.deepEqual(Object.keys(results.targets), ['R1', 'R2', 'R3', 'R4', 'R5', 'R6', 'R7a', 'R7b']);
      for (const [id, t] of Object.entries(results.targets as Record<string, { value: number }>)) assert.ok(Number.isFinite(t.value), id);
      assert.ok(results.daemon['unix-c32'].ok > 0 && results.ceiling['unix-c32'].ok > 0);
      assert.equal(results.overload.otherErrors, 0);
      assert.match(readFileSync(join(out, 'RESULTS.smoke.md'), 'utf8'), /\| R1 \| throughput, trivial policy/);

      // The native (h2load) run: every hot-path target computed from measured numbers.
      await promisify(execFile)(
        process.execPath,
        ['--disable-warning=ExperimentalWarning', `${ROOT}dist/bench/native.js`, '--smoke', '--out', out],
        { cwd: ROOT, maxBuffer: 2 ** 24 },
      );
      const native = JSON.parse(readFileSync(join(out, 'native.smoke.json'), 'utf8'));
      assert.deepEqual(
        native.targets.map((t: { id: string }) => t.id),
        ['R1', 'R1', 'R2', 'R2', 'R3', 'R6', 'R6', 'R6', 'R8'],
      );
      for (const t of native.targets as { id: string; value: number }[]) assert.ok(Number.isFinite(t.value), t.id);
      assert.ok(native.outcomes.ok > 0 && native.daemon.tinygoTcp.requests > 0 && native.ceiling.tcp.requests > 0);
      // CPU by thread (bench/threads.ts): the daemon's pool workers are found by name, the no-op has none.
      assert.ok(native.daemon.tinygoTcp.workersMs > 0 && native.daemon.tinygoTcp.mainMs > 0, JSON.stringify(native.daemon.tinygoTcp));
      assert.equal(native.ceiling.tcp.workersMs, 0);
      assert.ok(native.ceiling.tcp.mainMs > 0 && native.ceiling.tcp.mainMs <= native.ceiling.tcp.serverCpuMsPerRequest + 0.01);
      assert.ok(native.overload.sent > 0 && native.overload.byStatus.OK.count > 0, JSON.stringify(native.overload.byStatus));
      assert.ok(native.floor.byStatus.OK.count === native.floor.sent, JSON.stringify(native.floor.byStatus)); // the no-op refuses nothing
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
