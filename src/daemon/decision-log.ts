import type { Logger } from 'pino';
import type { EngineObserver, EvaluationEvent } from '../engine/policy-engine.js';
import { errorMessage } from '../errors/policyd-error.js';
import { kindName } from '../materials/kinds.js';
import { sha256 } from '../policies/digest.js';

export interface DecisionLogOptions {
  /** One `decision` line per evaluation (and an `evaluation failed` line per failure). */
  decisions: boolean;
  /** Lines about evaluations (guest logs included) written per second; the rest are counted and reported. */
  maxLinesPerSecond: number;
  /** Decision-line fields replaced by "[masked]", as pino redact paths (`args.token`, `args.*`, `violations`). */
  mask?: string[];
  /** Milliseconds since the epoch; a test gives its own clock. */
  now?: () => number;
}

/** Violation messages written on a decision line; the count is always complete. */
export const MAX_LOGGED_VIOLATIONS = 100;

/**
 * The daemon's evaluation log, attached to the engine as an observer (OPA's decision logger is the
 * model): each evaluation's guest logs, with policy, digest and evaluation id; a warning for
 * arguments the policy does not declare (as Chainloop warns); and one `decision` line. Bounded: a
 * caller that drives thousands of evaluations a second, each with a thousand guest lines, must not
 * turn the log pipeline into the bottleneck, so lines beyond the budget are dropped and their count
 * reported once a second.
 */
export class DecisionLog implements EngineObserver {
  #window = 0;
  #written = 0;
  #dropped = 0;

  readonly #decisions: Logger;

  constructor(
    private readonly logger: Logger,
    private readonly options: DecisionLogOptions,
  ) {
    const mask = options.mask ?? [];
    this.#decisions = mask.length > 0 ? logger.child({}, { redact: { paths: mask, censor: '[masked]' } }) : logger;
  }

  /** True while this second's budget lasts; starts a new second (reporting what was dropped) when due. */
  #admit(lines: number): boolean {
    const now = Math.floor((this.options.now ?? Date.now)() / 1000);
    if (now !== this.#window) {
      if (this.#dropped > 0)
        this.logger.warn(
          { dropped: this.#dropped, maxLinesPerSecond: this.options.maxLinesPerSecond },
          'evaluation log lines dropped (log budget)',
        );
      this.#window = now;
      this.#written = 0;
      this.#dropped = 0;
    }
    if (this.#written + lines > this.options.maxLinesPerSecond) {
      this.#dropped += lines;
      return false;
    }
    this.#written += lines;
    return true;
  }

  evaluated(event: EvaluationEvent): void {
    const { result, error, request } = event;
    if (event.evaluationId === undefined || !request) return; // shed before a policy was found: metrics count it
    const guest = result?.logs ?? [];
    const ignored = result?.ignoredArgs ?? [];
    const decision = this.options.decisions ? 1 : 0;
    const lines = guest.length + (ignored.length > 0 ? 1 : 0) + decision;
    if (lines === 0 || !this.#admit(lines)) return;
    const ids = { policy: event.policy, digest: event.digest, evaluationId: event.evaluationId };
    const log = this.logger.child(ids);
    for (const entry of guest) log[entry.level]({ guest: true }, entry.message);
    // Chainloop warns the same way ("argument %q not defined in policy %q spec, ignoring it").
    if (ignored.length > 0) log.warn({ ignored }, 'arguments the policy does not declare were ignored');
    if (!decision) return;
    // What OPA's decision log carries: the input (by digest), the arguments, who asked, and the result.
    const { material, args, caller } = request;
    const input = {
      ...ids,
      kind: kindName(material.kind),
      materialName: material.name || 'material',
      materialDigest: sha256(material.content),
      args: args ?? {},
      caller: caller?.() ?? { role: 'local', subject: 'in-process' },
    };
    if (result) {
      const { violations, skipped, skipReasons, ignored: ignoredResult } = result.result;
      this.#decisions.info(
        {
          ...input,
          violationCount: violations.length,
          violations: violations.slice(0, MAX_LOGGED_VIOLATIONS).map((v) => v.message),
          skipped,
          skipReasons,
          ignored: ignoredResult,
          durationMs: Math.round(result.durationMs * 1000) / 1000,
        },
        'decision',
      );
    } else {
      this.#decisions.warn({ ...input, reason: event.outcome, error: errorMessage(error) }, 'evaluation failed');
    }
  }

  loadFailed(): void {}

  workerFailed(err: unknown): void {
    this.logger.error({ error: errorMessage(err) }, 'a worker failed between evaluations; it is replaced');
  }
}
