import { availableParallelism } from 'node:os';
import type { TransferListItem } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { DEFAULTS } from '../config/defaults.js';
import { PolicydError, errorMessage } from '../errors/policyd-error.js';
import { UNKNOWN_SETUP, type ScriptCall, type ScriptOutcome, type ScriptSetup } from '../worker/protocol.js';
import { RETURNED, RunBoard, type SKIPPED } from '../worker/run-board.js';
import { TaskBatches } from './task-batches.js';

export interface PoolOptions {
  /** Worker threads; each runs one evaluation at a time. */
  threads?: number;
  /** Evaluations that may wait for a worker; beyond that requests are refused at once (default: 8 per worker). */
  maxQueue?: number;
  /** Told when a worker fails outside a task (piscina replaces it); unhandled, the process would exit. */
  onWorkerError?: (err: unknown) => void;
  /** The worker module; the daemon's own by default (fault-injection tests give another). */
  workerFile?: string;
  /** Tasks a worker may hold, the one it runs included (DEFAULTS.tasksPerWorker). */
  tasksPerWorker?: number;
  /** Calls one task may carry (DEFAULTS.callsPerTask). */
  callsPerTask?: number;
}

type Answer = ScriptOutcome | typeof UNKNOWN_SETUP | typeof SKIPPED | typeof RETURNED;

const WORKER = new URL('../worker/entry.js', import.meta.url).href;

/** What a pool worker's V8 heap may take (DEFAULTS.workerYoungGenerationMb says why). */
export const WORKER_RESOURCE_LIMITS = { maxYoungGenerationSizeMb: DEFAULTS.workerYoungGenerationMb } as const;

/**
 * What `#queued` answers for a call whose worker was lost before the call's turn came, or after it ran but
 * before its answer got out: it may be sent again.
 */
const SEND_AGAIN = Symbol('send again');
/**
 * Times such a call is sent again. Each time, an evaluation on its worker was stopped or crashed; the
 * bound only ends a loop of workers lost before they answer anything.
 */
const MAX_RESENDS = 8;

/**
 * The worker running a call stopped (a crash, an exit); piscina starts another. The worker entry answers
 * every guest failure as an outcome, so this is the thread itself. The call may be retried.
 */
function workerLost(err: unknown): PolicydError {
  return new PolicydError('WORKER_LOST', `the worker running this evaluation stopped (${errorMessage(err)}); retry: it has been replaced`);
}

/**
 * The piscina pool that runs scripts. A worker holds up to DEFAULTS.tasksPerWorker tasks and runs them
 * one at a time (worker/run-board.ts says why, and how one of them stops alone); a bounded queue; a
 * running task that must stop terminates its worker — piscina starts a fresh one, and the tasks that
 * waited behind it are sent again.
 *
 * Admission is counted here rather than with piscina's `maxQueue`, which piscina only checks once
 * its own queue is non-empty (tasks handed to a busy worker slip past it).
 */
export class ScriptPool {
  readonly #pool: Piscina<ScriptCall | ScriptCall[], Answer | Answer[]>;
  readonly #board: RunBoard;
  readonly #batches: TaskBatches<ScriptCall, Answer>;
  readonly threads: number;
  readonly maxQueue: number;
  readonly #queueFull: PolicydError;
  #inFlight = 0;
  #started = 0;

  constructor(options: PoolOptions = {}) {
    this.threads = Math.max(1, options.threads ?? availableParallelism());
    this.maxQueue = options.maxQueue ?? DEFAULTS.queuePerWorker * this.threads;
    this.#queueFull = new PolicydError(
      'OVERLOADED',
      `the evaluation queue is full (${this.maxQueue} waiting on ${this.threads} workers); retry with backoff or add replicas`,
    );
    // Twice what may be in flight: a stopped task keeps its slot until its worker has let it go.
    this.#board = new RunBoard(2 * (this.threads + this.maxQueue));
    this.#pool = new Piscina({
      filename: options.workerFile ?? WORKER,
      minThreads: this.threads,
      maxThreads: this.threads,
      idleTimeout: Number.POSITIVE_INFINITY,
      concurrentTasksPerWorker: options.tasksPerWorker ?? DEFAULTS.tasksPerWorker,
      workerData: { board: this.#board.buffer },
      // Workers keep their event loop free between tasks (no blocking Atomics.wait), so the instance
      // for the next evaluation is made while they are idle (worker/instances.ts). 'async'
      // (Atomics.waitAsync) measured mixed, not a clear gain (bench/RESULTS.md, 2026-11-27).
      atomics: 'disabled',
      // Not the parent's execArgv: under `node --test` (Node 24) it holds flags a Worker refuses. Without
      // require(esm), piscina loads the worker module with import(): its require() path crashed Node 20
      // (a V8 FATAL "IsGraphAsync must be used on an instantiated module", seen once in make test).
      execArgv: ['--disable-warning=ExperimentalWarning', '--no-experimental-require-module'],
      resourceLimits: WORKER_RESOURCE_LIMITS,
      // Piscina's per-task timing feeds only its own utilization figure, which this pool does not use.
      recordTiming: false,
    });
    this.#batches = new TaskBatches(
      (calls) => this.#pool.run(calls) as Promise<Answer[]>,
      this.threads,
      options.callsPerTask ?? DEFAULTS.callsPerTask,
    );
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
   * start, and runs alone on an idle worker: what it transferred could not be sent a second time.
   * Any other call may wait in a worker behind the one running there (worker/run-board.ts), sent with
   * others in one task (engine/task-batches.ts); if that worker is lost before the call's answer is
   * out, and the call was not the one running, it is sent again.
   */
  async run(
    call: Omit<ScriptCall, 'setup' | 'slot'>,
    setup: ScriptSetup,
    signal: AbortSignal,
    transferList: TransferListItem[] = [],
  ): Promise<ScriptOutcome> {
    if (signal.aborted) throw signal.reason;
    const refused = this.refusal();
    if (refused) throw refused;
    this.#inFlight++;
    try {
      if (transferList.length > 0) return (await this.#alone({ ...call, setup }, signal, transferList)) as ScriptOutcome;
      let named: ScriptCall['setup'] = setup.id;
      let ownTask = false;
      for (let resent = 0; ; ) {
        const answer = await this.#queued({ ...call, setup: named }, signal, ownTask);
        if (answer === UNKNOWN_SETUP) named = setup;
        else if (answer === RETURNED) ownTask = true;
        else if (answer !== SEND_AGAIN) return answer;
        else if (++resent > MAX_RESENDS) throw workerLost(new Error(`its worker was lost before it answered, ${resent} times`));
      }
    } finally {
      this.#inFlight--;
    }
  }

  /** A call on a worker of its own, stopped by piscina (which terminates the worker) if it must stop. */
  async #alone(call: ScriptCall, signal: AbortSignal, transferList: TransferListItem[]): Promise<ScriptOutcome | typeof UNKNOWN_SETUP> {
    try {
      return (await this.#pool.run(call, { signal, transferList: transferList as never })) as ScriptOutcome | typeof UNKNOWN_SETUP;
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw workerLost(err);
    }
  }

  /**
   * A call that may queue in a worker. Stopping it marks its slot: skipped if it has not started,
   * its worker terminated if it has. SEND_AGAIN: its worker was lost before the call's turn came, or
   * before the task that carried it answered. `ownTask`: in a task of its own (a call RETURNED once is
   * sent so, lest it be returned again and again).
   */
  async #queued(
    call: ScriptCall,
    signal: AbortSignal,
    ownTask: boolean,
  ): Promise<ScriptOutcome | typeof UNKNOWN_SETUP | typeof RETURNED | typeof SEND_AGAIN> {
    if (signal.aborted) throw signal.reason;
    const slot = this.#board.acquire();
    if (slot === undefined) return this.#alone(call, signal, []);
    // At once only for a lone call (#inFlight counts this one): see engine/task-batches.ts.
    const answer = this.#batches.submit({ ...call, slot }, ownTask || this.#inFlight === 1).then(
      (outcome) => ({ outcome }),
      (error: unknown) => ({ error, mayRunAgain: this.#board.mayRunAgain(slot) }),
    );
    void answer.finally(() => this.#board.release(slot));
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => {
        const running = this.#board.stop(slot);
        if (running !== undefined) void this.#pool.threads.find((t) => t.threadId === running)?.terminate();
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const settled = await Promise.race([answer, aborted]);
      // SKIPPED answers only a call already given up, whose race `aborted` has won.
      if ('outcome' in settled) return settled.outcome as ScriptOutcome | typeof UNKNOWN_SETUP | typeof RETURNED;
      if (settled.mayRunAgain) return SEND_AGAIN;
      throw workerLost(settled.error);
    } finally {
      signal.removeEventListener('abort', onAbort!);
    }
  }

  /**
   * Why an evaluation submitted now would be refused (the queue is full), if it would, with `ahead` more
   * on their way. One error for every refusal: its message never changes, and under overload building
   * one (and capturing its stack) per refused call was a tenth of the main thread's work.
   */
  refusal(ahead = 0): PolicydError | undefined {
    return this.#inFlight + ahead < this.threads + this.maxQueue ? undefined : this.#queueFull;
  }

  /** True when an evaluation submitted now, with `ahead` more on their way, would start at once. */
  hasIdleWorker(ahead = 0): boolean {
    return this.#inFlight + ahead < this.threads;
  }

  /** Evaluations waiting for a worker. */
  get queueSize(): number {
    return Math.max(0, this.#inFlight - this.threads);
  }

  /**
   * Share of the workers' time spent busy (0-1), each since it started: their event loops' utilization.
   * Not piscina's own figure, which counts the time a task waits in its worker as time it ran.
   */
  get utilization(): number {
    const threads = this.#pool.threads;
    if (threads.length === 0) return 0;
    return threads.reduce((sum, t) => sum + t.performance.eventLoopUtilization().utilization, 0) / threads.length;
  }

  async close(): Promise<void> {
    await this.#pool.close({ force: true });
  }
}
