import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DecisionLog } from '../../src/daemon/decision-log.js';
import type { EvaluationEvent, EvaluationOutcome } from '../../src/engine/policy-engine.js';
import { PolicydError } from '../../src/errors/policyd-error.js';
import { MaterialKind } from '../../src/gen/policyengine/v1/engine_pb.js';
import { capturedLogger } from '../helpers/logs.js';

const request = { policy: 'p', material: { content: new Uint8Array(), kind: MaterialKind.EVIDENCE } };
function ok(id: string, guestLines: number, ignoredArgs: string[] = []): EvaluationEvent {
  const result = {
    result: { violations: [{ message: 'v' }], skipped: false, skipReasons: [], ignored: false },
    logs: Array.from({ length: guestLines }, (_, i) => ({ level: 'info' as const, message: `guest ${i}` })),
    ignoredArgs,
    durationMs: 1.5,
  } as unknown as EvaluationOutcome;
  return { policy: 'p', digest: 'sha256:d', evaluationId: id, outcome: 'ok', seconds: 0.0015, request, result };
}

describe('the decision log (an engine observer)', () => {
  it('writes guest logs, the ignored-arguments warning and one decision line, all with policy, digest and evaluation id', () => {
    const { logger, lines } = capturedLogger();
    new DecisionLog(logger, { decisions: true, maxLinesPerSecond: 100 }).evaluated(ok('e1', 2, ['extra']));
    assert.deepEqual(
      lines.map((l) => l.msg),
      ['guest 0', 'guest 1', 'arguments the policy does not declare were ignored', 'decision'],
    );
    assert.ok(lines.every((l) => l.policy === 'p' && l.digest === 'sha256:d' && l.evaluationId === 'e1'));
    assert.equal(lines[3]!.violationCount, 1);
    assert.deepEqual(lines[3]!.violations, ['v']);
    assert.equal(lines[3]!.kind, 'EVIDENCE');
  });

  it('writes a failure with its reason, and nothing for a request shed before its policy was found', () => {
    const { logger, lines } = capturedLogger();
    const log = new DecisionLog(logger, { decisions: true, maxLinesPerSecond: 100 });
    log.evaluated({
      policy: 'p',
      digest: 'sha256:d',
      evaluationId: 'e2',
      outcome: 'POLICY_PANIC',
      seconds: 0,
      request,
      error: new PolicydError('POLICY_PANIC', 'boom'),
    });
    log.evaluated({ policy: '(unknown)', outcome: 'OVERLOADED', seconds: 0, request });
    assert.deepEqual(
      lines.map((l) => [l.msg, l.reason]),
      [['evaluation failed', 'POLICY_PANIC']],
    );
  });

  it('keeps to its lines-per-second budget: whole evaluations beyond it are dropped and counted in the next second', () => {
    const { logger, lines } = capturedLogger();
    let clock = 1_000_000;
    const log = new DecisionLog(logger, { decisions: true, maxLinesPerSecond: 10, now: () => clock });
    for (let i = 0; i < 5; i++) log.evaluated(ok(`e${i}`, 3)); // 4 lines each: two fit, three do not
    assert.equal(lines.length, 8);
    clock += 1000;
    log.evaluated(ok('next', 0));
    assert.deepEqual(
      lines.slice(8).map((l) => [l.msg, l.dropped]),
      [
        ['evaluation log lines dropped (log budget)', 12],
        ['decision', undefined],
      ],
    );
  });
});
