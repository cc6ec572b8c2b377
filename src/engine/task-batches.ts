/**
 * Calls that may wait in a pool worker, sent to piscina several to a task.
 *
 * Piscina's cost per task — its bookkeeping and balancer, a structured-clone message each way, a
 * 'message' event to dispatch — is paid by the main thread, which is what limits the daemon's
 * throughput, and by the worker. Several calls in one task pay it once: measured with stand-in workers
 * that answer at once, main thread 19–22 µs per call one to a task, 9 four to a task, 7–8 eight to a task
 * (bench/RESULTS.md, 2026-11-27 (day)).
 *
 * A lone call (no other in flight) goes at once, in a task of its own: a lone client waits for nothing.
 * Any other waits for the end of this turn of the event loop (the calls of one burst arrive in one
 * turn), when everything waiting is split over as many tasks as there are workers, or more if that puts
 * more than `maxPerTask` calls in one. It waits even if a worker is idle: under load, answers come back
 * a task at a time and the next requests in bursts, so a worker was idle for the first call of nearly
 * every burst, and a third of all tasks carried one call; holding it for its turn's others gained the
 * trivial policy 16 % and cost heavier ones nothing measurable (docs/design-notes.md).
 *
 * The cost: a task's answers come back together, so a quick call waits for the others sent with it —
 * for about a millisecond at most, since a worker returns the calls of a task that has run that long
 * unrun (RETURNED, worker/run-board.ts), and they go again alone.
 */

interface Waiting<Call, Answer> {
  call: Call;
  resolve: (answer: Answer) => void;
  reject: (error: unknown) => void;
}

export class TaskBatches<Call, Answer> {
  #waiting: Waiting<Call, Answer>[] = [];

  /**
   * `send` runs one task (its calls in order) and answers each call in the same order; `workers` is
   * how many tasks a burst is spread over at least.
   */
  constructor(
    private readonly send: (calls: Call[]) => Promise<Answer[]>,
    private readonly workers: number,
    private readonly maxPerTask: number,
  ) {}

  /** Sends `call` in a task of its own at once if `now`, else with the other calls of this turn. */
  submit(call: Call, now: boolean): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      const waiting = { call, resolve, reject };
      if (now) return this.#sendTask([waiting]);
      if (this.#waiting.length === 0) setImmediate(() => this.#flush());
      this.#waiting.push(waiting);
    });
  }

  #flush(): void {
    const all = this.#waiting;
    this.#waiting = [];
    const tasks = Math.max(Math.min(all.length, this.workers), Math.ceil(all.length / this.maxPerTask));
    for (let t = 0, from = 0; t < tasks; t++) {
      const to = from + Math.ceil((all.length - from) / (tasks - t));
      this.#sendTask(all.slice(from, to));
      from = to;
    }
  }

  #sendTask(task: Waiting<Call, Answer>[]): void {
    this.send(task.map((w) => w.call)).then(
      (answers) => {
        for (const [i, w] of task.entries()) w.resolve(answers[i]!);
      },
      (error: unknown) => {
        for (const w of task) w.reject(error);
      },
    );
  }
}
