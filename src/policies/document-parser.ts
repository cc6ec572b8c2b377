import { Worker } from 'node:worker_threads';
import { PolicydError } from '../errors/policyd-error.js';
import type { PolicyDocument } from './document.js';
import type { ParseReply, ParseRequest } from './document-worker.js';

const WORKER = new URL('./document-worker.js', import.meta.url);

/**
 * Parses policy documents on a thread of their own, within a time budget: a document that takes
 * longer (megabytes of YAML) is refused and its thread replaced, and the main thread never parses.
 */
export class DocumentParser {
  #worker: Worker | undefined;
  #nextId = 0;
  readonly #pending = new Map<number, { resolve: (d: PolicyDocument) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  constructor(private readonly budgetMs = 10_000) {}

  #thread(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(WORKER, { execArgv: [] });
    worker.unref(); // a parse in flight belongs to a call, which keeps the process alive
    worker.on('message', (reply: ParseReply) => {
      const pending = this.#pending.get(reply.id);
      if (!pending) return;
      this.#pending.delete(reply.id);
      clearTimeout(pending.timer);
      if ('error' in reply) pending.reject(PolicydError.from(reply.error));
      else pending.resolve(reply.document as PolicyDocument);
    });
    worker.on('error', (err) => this.#fail(new PolicydError('INVALID_DOCUMENT', `the document parser failed: ${err.message}`)));
    worker.on('exit', () => {
      if (this.#worker === worker) this.#worker = undefined;
    });
    this.#worker = worker;
    return worker;
  }

  /** Rejects everything in flight and drops the thread (the next parse starts another). */
  #fail(error: PolicydError): void {
    const worker = this.#worker;
    this.#worker = undefined;
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      pending.reject(error);
      this.#pending.delete(id);
    }
    void worker?.terminate();
  }

  parse(bytes: Uint8Array, label: string): Promise<PolicyDocument> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          this.#fail(
            new PolicydError(
              'INVALID_DOCUMENT',
              `${label} took longer than ${this.budgetMs} ms to parse; a policy document is a few kilobytes of YAML plus its embedded scripts`,
            ),
          ),
        this.budgetMs,
      );
      this.#pending.set(id, { resolve, reject, timer });
      this.#thread().postMessage({ id, bytes, label } satisfies ParseRequest);
    });
  }

  async close(): Promise<void> {
    this.#fail(new PolicydError('SHUTTING_DOWN', 'the daemon is shutting down'));
  }
}
