import { availableParallelism } from 'node:os';
import type { TransferListItem } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { PolicydError } from '../errors/policyd-error.js';
import type { ScriptMessage, ScriptOutcome, ScriptTask, WorkerReply } from '../worker/protocol.js';

export interface PoolOptions {
  /** Worker threads; each runs one evaluation at a time. */
  threads?: number;
  /** Evaluations that may wait for a worker; beyond that requests are refused at once. */
  maxQueue?: number;
}

const WORKER = new URL('../worker/run-script.js', import.meta.url).href;

/**
 * The piscina pool that runs scripts. One task per worker at a time (@extism/extism gives wrong
 * output for concurrent calls on one instance); a bounded queue; a running task that must stop is
 * aborted, which terminates its worker — piscina starts a fresh one and nothing else is lost.
 *
 * Admission is counted here rather than with piscina's `maxQueue`, which piscina only checks once
 * its own queue is non-empty (tasks handed to a busy worker slip past it).
 *
 * A script's compiled modules travel with its tasks only until every worker holds them: structured
 * clone copies a module's bytes on every message (a TinyGo policy is ~800 KB, ~75 µs of the main
 * thread per evaluation). A worker that gets a task without modules it lacks (it was replaced, say)
 * hands the task back and it is sent again with them.
 */
export class ScriptPool {
  readonly #pool: Piscina<ScriptMessage, WorkerReply>;
  /** Threads known to hold each script's modules, by instanceKey. */
  readonly #holders = new Map<string, Set<number>>();
  readonly threads: number;
  readonly maxQueue: number;
  #inFlight = 0;

  constructor(options: PoolOptions = {}) {
    this.threads = Math.max(1, options.threads ?? availableParallelism());
    this.maxQueue = options.maxQueue ?? 256;
    this.#pool = new Piscina({
      filename: WORKER,
      minThreads: this.threads,
      maxThreads: this.threads,
      idleTimeout: Number.POSITIVE_INFINITY,
      concurrentTasksPerWorker: 1,
      // Workers keep their event loop free between tasks (no blocking Atomics.wait), so the instance
      // for the next evaluation is made while they are idle (worker/instances.ts).
      atomics: 'disabled',
      // Not the parent's execArgv: under `node --test` (Node 24) it holds flags a Worker refuses.
      execArgv: ['--disable-warning=ExperimentalWarning'],
    });
    // A new thread holds nothing; forgetting everything is cheap and rare.
    this.#pool.on('workerDestroy', () => this.#holders.clear());
  }

  /**
   * Runs one script. `signal.reason` must be the PolicydError to answer with when it aborts
   * (timeout, client cancel).
   */
  async run(task: ScriptTask, signal: AbortSignal, transferList: TransferListItem[] = []): Promise<ScriptOutcome> {
    if (signal.aborted) throw signal.reason;
    if (this.#inFlight >= this.threads + this.maxQueue) {
      throw new PolicydError(
        'OVERLOADED',
        `the evaluation queue is full (${this.maxQueue} waiting on ${this.threads} workers); retry with backoff or add replicas`,
      );
    }
    this.#inFlight++;
    try {
      const holders = this.#holders.get(task.instanceKey);
      const message: ScriptMessage = holders && holders.size >= this.threads ? { ...task, module: undefined, proxy: undefined } : task;
      let reply = await this.#pool.run(message, { signal, transferList: transferList as never });
      if (reply.ok === 'needs-modules') {
        // The input and the host channel came back with it; nothing else was transferred.
        reply = await this.#pool.run({ ...task, input: reply.input, host: reply.host }, { signal, transferList: [reply.input.buffer, ...(reply.host ? [reply.host.port] : [])] as never });
      }
      this.#hold(task.instanceKey, reply.threadId);
      const { threadId: _, ...outcome } = reply;
      return outcome as ScriptOutcome;
    } catch (err) {
      throw signal.aborted ? signal.reason : err;
    } finally {
      this.#inFlight--;
    }
  }

  #hold(instanceKey: string, threadId: number): void {
    if (this.#holders.size > 1024) this.#holders.clear(); // scripts long unloaded
    let holders = this.#holders.get(instanceKey);
    if (!holders) this.#holders.set(instanceKey, (holders = new Set()));
    holders.add(threadId);
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
