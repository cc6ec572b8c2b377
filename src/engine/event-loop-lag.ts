/**
 * How late this thread's event loop runs, sampled every few milliseconds. When the main thread is
 * saturated, requests wait in socket buffers before any handler sees them — a queue no counter of
 * ours can bound — so new evaluations are refused while the loop lags (load shedding that keeps the
 * latency of accepted work bounded).
 *
 * The lag reported is the smallest of the last few samples: a saturated loop is late every time, while
 * one late tick (a GC pause, the OS scheduling another process) must not turn requests away.
 */
export class EventLoopLag {
  readonly #samples = [0, 0, 0, 0];
  #next = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(intervalMs = 5) {
    let expected = performance.now() + intervalMs;
    this.#timer = setInterval(() => {
      const now = performance.now();
      this.#samples[this.#next++ % this.#samples.length] = Math.max(0, now - expected);
      expected = now + intervalMs;
    }, intervalMs);
    this.#timer.unref();
  }

  get lagMs(): number {
    return Math.min(...this.#samples);
  }

  close(): void {
    clearInterval(this.#timer);
  }
}
