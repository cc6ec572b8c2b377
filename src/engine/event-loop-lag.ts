/**
 * How late this thread's event loop runs, sampled every few milliseconds. When the main thread is
 * saturated, requests wait in socket buffers before any handler sees them — a queue no counter of
 * ours can bound — so new evaluations are refused while the loop lags (load shedding that keeps the
 * latency of accepted work bounded).
 */
export class EventLoopLag {
  #lagMs = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(intervalMs = 5) {
    let expected = performance.now() + intervalMs;
    this.#timer = setInterval(() => {
      const now = performance.now();
      this.#lagMs = Math.max(0, now - expected);
      expected = now + intervalMs;
    }, intervalMs);
    this.#timer.unref();
  }

  get lagMs(): number {
    return this.#lagMs;
  }

  close(): void {
    clearInterval(this.#timer);
  }
}
