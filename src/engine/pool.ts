import { availableParallelism } from 'node:os';
import type { TransferListItem } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { DEFAULTS } from '../config/defaults.js';
import { PolicydError, errorMessage } from '../errors/policyd-error.js';
import { UNKNOWN_SETUP, type ScriptCall, type ScriptOutcome, type ScriptSetup } from '../worker/protocol.js';

export interface PoolOptions {
  /** Worker threads; each runs one evaluation at a time. */
  threads?: number;
  /** Evaluations that may wait for a worker; beyond that requests are refused at once (default: 8 per worker). */
  maxQueue?: number;
  /** Told when a worker fails outside a task (piscina replaces it); unhandled, the process would exit. */
  onWorkerError?: (err: unknown) => void;
  /** The worker module; the daemon's own by default (fault-injection tests give another). */
  workerFile?: string;
}

const WORKER = new URL('../worker/entry.js', import.meta.url).href;

/** What a pool worker's V8 heap may take (DEFAULTS.workerYoungGenerationMb says why). */
export const WORKER_RESOURCE_LIMITS = { maxYoungGenerationSizeMb: DEFAULTS.workerYoungGenerationMb } as const;

/**
 * The piscina pool that runs scripts. One task per worker at a time (@extism/extism gives wrong
 * output for concurrent calls on one instance); a bounded queue; a running task that must stop is
 * aborted, which terminates its worker — piscina starts a fresh one and nothing else is lost.
 *
 * Admission is counted here rather than with piscina's `maxQueue`, which piscina only checks once
 * its own queue is non-empty (tasks handed to a busy worker slip past it).
 */
export class ScriptPool {
  readonly #pool: Piscina<ScriptCall, ScriptOutcome | typeof UNKNOWN_SETUP>;
  readonly threads: number;
  readonly maxQueue: number;
  #inFlight = 0;
  #started = 0;

  constructor(options: PoolOptions = {}) {
    this.threads = Math.max(1, options.threads ?? availableParallelism());
    this.maxQueue = options.maxQueue ?? DEFAULTS.queuePerWorker * this.threads;
    this.#pool = new Piscina({
      filename: options.workerFile ?? WORKER,
      minThreads: this.threads,
      maxThreads: this.threads,
      idleTimeout: Number.POSITIVE_INFINITY,
      concurrentTasksPerWorker: 1,
      // Workers keep their event loop free between tasks (no blocking Atomics.wait), so the instance
      // for the next evaluation is made while they are idle (worker/instances.ts). 'async'
      // (Atomics.waitAsync) measured mixed, not a clear gain (bench/RESULTS.md, 2026-11-27).
      atomics: 'disabled',
      // Not the parent's execArgv: under `node --test` (Node 24) it holds flags a Worker refuses. Without
      // require(esm), piscina loads the worker module with import(): its require() path crashed Node 20
      // (a V8 FATAL "IsGraphAsync must be used on an instantiated module", seen once in make test).
      execArgv: ['--disable-warning=ExperimentalWarning', '--no-experimental-require-module'],
      resourceLimits: WORKER_RESOURCE_LIMITS,
    });
    this.#pool.on('error', (err: unknown) => options.onWorkerError?.(err));
    this.#pool.on('workerCreate', () => this.#started++);
  }

  /**
   * Workers started since the pool was made, the first ones included: one more for every worker lost
   * (a crash, or a running evaluation stopped by its timeout or its caller's cancellation).
   */
  get workersStarted(): number {
    return this.#started;
  }

  /**
   * Runs one script. `signal.reason` must be the PolicydError to answer with when it aborts
   * (timeout, client cancel).
   *
   * The call names its setup by id, and is sent again with the setup itself if its worker does not
   * know it yet. A call that transfers anything (its input, a host port) carries the setup from the
   * start: what it transferred could not be sent a second time.
   */
  async run(
    call: Omit<ScriptCall, 'setup'>,
    setup: ScriptSetup,
    signal: AbortSignal,
    transferList: TransferListItem[] = [],
  ): Promise<ScriptOutcome> {
    if (signal.aborted) throw signal.reason;
    const refused = this.refusal();
    if (refused) throw refused;
    this.#inFlight++;
    try {
      const named = transferList.length > 0 ? setup : setup.id;
      const outcome = await this.#pool.run({ ...call, setup: named }, { signal, transferList: transferList as never });
      if (outcome !== UNKNOWN_SETUP) return outcome;
      return (await this.#pool.run({ ...call, setup }, { signal })) as ScriptOutcome;
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      // The worker entry answers every guest failure as an outcome, so a rejection here means the
      // thread itself stopped (a crash, an exit); piscina starts another. The call may be retried.
      throw new PolicydError(
        'WORKER_LOST',
        `the worker running this evaluation stopped (${errorMessage(err)}); retry: it has been replaced`,
      );
    } finally {
      this.#inFlight--;
    }
  }

  /** Why an evaluation submitted now would be refused (the queue is full), if it would. */
  refusal(): PolicydError | undefined {
    if (this.#inFlight < this.threads + this.maxQueue) return undefined;
    return new PolicydError(
      'OVERLOADED',
      `the evaluation queue is full (${this.maxQueue} waiting on ${this.threads} workers); retry with backoff or add replicas`,
    );
  }

  /** True when an evaluation submitted now would start at once. */
  get hasIdleWorker(): boolean {
    return this.#inFlight < this.threads;
  }

  /** Evaluations waiting for a worker. */
  get queueSize(): number {
    return Math.max(0, this.#inFlight - this.threads);
  }

  get utilization(): number {
    return this.#pool.utilization;
  }

  async close(): Promise<void> {
    await this.#pool.close({ force: true });
  }
}
