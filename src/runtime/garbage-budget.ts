import { type PerformanceEntry, PerformanceObserver, constants } from 'node:perf_hooks';
import { DEFAULTS, MiB } from '../config/defaults.js';

/**
 * When a thread of the daemon collects its garbage.
 *
 * An evaluation leaves memory outside the V8 heap behind: the guest's linear memory (all of a new
 * instance's, what a reset one grew by), the material and the input built from it, the Extism SDK's
 * copies, guest HTTP bodies.
 * By default V8 answers each 64 MB of such "external" memory with a mark-compact that it runs
 * incrementally, beside the evaluations, with concurrent marking on its helper threads: for Chainloop's
 * TinyGo policy one every ~250 evaluations per worker, and a third of the daemon's CPU per evaluation
 * went to GC (bench/RESULTS.md).
 *
 * The daemon therefore runs V8 with `--external-memory-accounted-in-global-limit`, which turns that
 * trigger off (external memory then only counts towards the heap's global limit, which lets it reach
 * gigabytes), and `--expose-gc` (DAEMON_NODE_FLAGS). Each thread counts the external memory its work
 * takes on, here, and collects in one atomic pause once that reaches 64 MB (the allowance V8 gave
 * external memory) at a moment it chooses: right after the work that spent the budget, once its
 * result is on its way. Without `--expose-gc` (an embedder's own process)
 * nothing is collected here and V8's own trigger, left on, applies. test/e2e/garbage.test.ts shows
 * what happens when a kind of allocation is not counted: it piles up.
 */
export class GarbageBudget {
  #taken = 0;
  #scheduled = false;

  constructor(
    readonly budgetBytes: number,
    private readonly collect: (() => void) | undefined = typeof gc === 'function' ? () => gc!() : undefined,
  ) {}

  /** A full collection happened anyway (V8's own, for the heap's growth): the count starts again. */
  collected(): void {
    this.#taken = 0;
  }

  /** Counts external memory this thread's work allocated, garbage once that work is done. */
  took(bytes: number): void {
    this.#taken += bytes;
    if (this.#taken < this.budgetBytes || this.#scheduled || !this.collect) return;
    this.#scheduled = true;
    // After the I/O and promise callbacks of this turn: a worker has posted its result by then.
    setImmediate(() => {
      this.#scheduled = false;
      this.#taken = 0;
      this.collect!();
    });
  }
}

/** This thread's budget (every worker thread has its own copy of this module). */
export const garbage = new GarbageBudget(DEFAULTS.threadGarbageMb * MiB);

// V8 still runs full collections of its own as the heap grows (a new instance puts its wasm objects
// straight into old space); each one freed what was counted, so the count starts again
// and only memory taken on faster than the heap grows costs an extra collection (trivial policy:
// +16 % evaluations/s against counting on; TinyGo: no change).
if (typeof gc === 'function') {
  new PerformanceObserver((list) => {
    const major = (e: PerformanceEntry) => (e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR;
    if (list.getEntries().some(major)) garbage.collected();
  }).observe({ entryTypes: ['gc'] });
}
