import { threadId, workerData } from 'node:worker_threads';

/**
 * Where each queued evaluation stands, in memory the main thread and the pool workers share: the
 * board that lets a worker hold more than one task (so that it goes from one evaluation to the next
 * without waiting for the main thread, and the main thread answers several results per turn of its
 * event loop) while an evaluation that must stop still stops alone.
 *
 * A task that may queue behind another in a worker has a slot. The worker claims it when the task's
 * turn comes (writing its thread id) and marks it done at the end; the main thread stops a task by
 * marking its slot: one not yet started is skipped when its turn comes, one running is stopped by
 * terminating its worker. Every change is a compare-and-exchange, so exactly one side decides each
 * race: a task whose worker finished it first is not stopped, and a worker never starts a task the
 * main thread has given up. Tasks queued behind a stopped one are known not to have started (their
 * slots still read NOT_STARTED) and are sent again.
 */

/** Slot states; any positive value is the id of the thread running the task. */
const NOT_STARTED = 0;
const SKIP = -1;
const STOPPING = -2;
/** Answered: if that answer is lost with its worker, the task may run again (it has no side effects). */
const DONE = -3;
/** Ended by an exception (a bug: the worker's task function answers every failure as an outcome). */
const THREW = -4;

/** The answer of a worker to a task that was stopped before its turn came. */
export const SKIPPED = 'skipped';

/** The main thread's side: hands out slots and stops tasks. */
export class RunBoard {
  readonly buffer: SharedArrayBuffer;
  readonly #slots: Int32Array;
  readonly #free: number[];

  constructor(size: number) {
    this.buffer = new SharedArrayBuffer(size * Int32Array.BYTES_PER_ELEMENT);
    this.#slots = new Int32Array(this.buffer);
    this.#free = Array.from({ length: size }, (_, i) => size - 1 - i);
  }

  /** A slot for a new task, or undefined when every slot is held (the task then runs alone). */
  acquire(): number | undefined {
    const slot = this.#free.pop();
    if (slot !== undefined) Atomics.store(this.#slots, slot, NOT_STARTED);
    return slot;
  }

  /** Once the task's worker has answered or gone: nothing reads the slot any more. */
  release(slot: number): void {
    this.#free.push(slot);
  }

  /**
   * True if the task may be sent again after its worker was lost: no worker started it, or one finished
   * it and the answer was lost with the task that carried it (engine/task-batches.ts). A task that may
   * queue carries no host port, so running it again has no effect outside its answer.
   */
  mayRunAgain(slot: number): boolean {
    const state = Atomics.load(this.#slots, slot);
    return state === NOT_STARTED || state === DONE;
  }

  /** Stops the task: the id of the thread to terminate if it is running, undefined otherwise. */
  stop(slot: number): number | undefined {
    for (;;) {
      const state = Atomics.load(this.#slots, slot);
      if (state === NOT_STARTED) {
        if (Atomics.compareExchange(this.#slots, slot, NOT_STARTED, SKIP) === NOT_STARTED) return undefined;
      } else if (state > 0) {
        if (Atomics.compareExchange(this.#slots, slot, state, STOPPING) === state) return state;
      } else {
        return undefined; // done (its answer is on the way), or already stopped
      }
    }
  }
}

/** The worker's side: the board the pool shares through piscina's workerData. */
const slots = (workerData as { board?: SharedArrayBuffer } | null)?.board;
const board = slots ? new Int32Array(slots) : undefined;

let previous: Promise<unknown> = Promise.resolve();

/**
 * A task carrying several calls is answered once all have run (engine/task-batches.ts). Once it has run
 * this long, its calls still to come are answered RETURNED instead, so that slow evaluations do not hold
 * the answers of the quick ones sent with them; piscina's cost per task, saved by sending calls
 * together, is tens of microseconds, small beside evaluations this slow.
 */
const TASK_BUDGET_MS = 1;

/** The answer to a call of a task that ran out of time before the call's turn: send it again, alone. */
export const RETURNED = 'returned';

const ALWAYS_IN_TIME = () => true;

/**
 * Wraps a worker's task function so that the tasks it holds run one after another in arrival order
 * (@extism/extism gives wrong output for concurrent calls on one instance), each claiming its slot when
 * its turn comes; a task the main thread stopped before then is answered SKIPPED without running.
 * A piscina task may carry several calls: they are answered together, in order, each RETURNED if the
 * task had run past TASK_BUDGET_MS when the call's turn came.
 */
export function oneAtATime<Task extends { slot?: number }, Answer>(
  run: (task: Task) => Answer | Promise<Answer>,
): (task: Task | Task[]) => Promise<Answer | typeof SKIPPED | typeof RETURNED | (Answer | typeof SKIPPED | typeof RETURNED)[]> {
  const one = (task: Task, inTime = ALWAYS_IN_TIME): Promise<Answer | typeof SKIPPED | typeof RETURNED> => {
    const turn = previous.then(async () => {
      if (!inTime()) return RETURNED;
      const { slot } = task;
      if (!board || slot === undefined) return run(task);
      if (Atomics.compareExchange(board, slot, NOT_STARTED, threadId) !== NOT_STARTED) return SKIPPED;
      let ended = THREW;
      try {
        const answer = await run(task);
        ended = DONE;
        return answer;
      } finally {
        Atomics.compareExchange(board, slot, threadId, ended);
      }
    });
    previous = turn.catch(() => undefined);
    return turn;
  };
  const several = async (calls: Task[]) => {
    let began: number | undefined;
    const inTime = () => {
      const now = performance.now();
      began ??= now;
      return now - began <= TASK_BUDGET_MS;
    };
    // Every call settles before the task does, so that the main thread, reading their slots when the
    // task fails, finds none still running.
    const settled = await Promise.allSettled(calls.map((call) => one(call, inTime)));
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    return settled.map((s) => (s as PromiseFulfilledResult<Answer | typeof SKIPPED | typeof RETURNED>).value);
  };
  return (task) => (Array.isArray(task) ? several(task) : one(task));
}
