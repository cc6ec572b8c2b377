import type { GuestLogLevel, LogRecord } from './protocol.js';

const MAX_MESSAGE_CHARS = 4096;

/**
 * The Console the Extism SDK writes guest `log_*` calls to: keeps them for the response, bounded in
 * count and size so a log flood cannot grow without limit.
 */
export class GuestLogs {
  readonly records: LogRecord[] = [];
  #dropped = 0;
  /** The SDK refused an allocation for the memory cap (it logs this and returns 0 to the guest). */
  sawMemoryLimit = false;

  constructor(private readonly maxEntries: number) {}

  #push(level: GuestLogLevel, args: unknown[]): void {
    if (level === 'error' && /memory limit exceeded: \d+ pages requested/.test(String(args[0]))) this.sawMemoryLimit = true;
    if (this.records.length >= this.maxEntries) {
      this.#dropped++;
      return;
    }
    let message = args.map(String).join(' ');
    if (message.length > MAX_MESSAGE_CHARS) message = `${message.slice(0, MAX_MESSAGE_CHARS)}… (truncated)`;
    this.records.push({ level, message });
  }

  /** Everything the SDK may call on its logger; SDK-internal complaints arrive as `error`. */
  readonly console = {
    trace: (...a: unknown[]) => this.#push('trace', a),
    debug: (...a: unknown[]) => this.#push('debug', a),
    info: (...a: unknown[]) => this.#push('info', a),
    log: (...a: unknown[]) => this.#push('info', a),
    warn: (...a: unknown[]) => this.#push('warn', a),
    error: (...a: unknown[]) => this.#push('error', a),
  };

  finish(): LogRecord[] {
    if (this.#dropped > 0) {
      this.records.push({ level: 'warn', message: `${this.#dropped} more log entries dropped (limit ${this.maxEntries})` });
      this.#dropped = 0;
    }
    return this.records;
  }
}
