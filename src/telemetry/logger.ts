import { type Logger, type LevelWithSilent, pino } from 'pino';

/**
 * The daemon's logger: JSON lines on stderr, written asynchronously from a bounded buffer.
 *
 * Why not pino's default destination: it writes synchronously, and stderr is a pipe (the container
 * runtime's, a supervisor's) that can stop being read for a while. A write to a full pipe then fails
 * EAGAIN and sonic-boom sleeps the main thread 100 ms and tries again, for as long as nobody reads, so
 * every caller's RPCs waited behind a log line: an open-loop benchmark whose parent did not read the
 * daemon's stderr spent 18 % of the main thread asleep there (bench/RESULTS.md). Here a write goes to
 * libuv's thread pool; while the pipe is full, lines collect up to `maxBufferedKb`, and lines beyond
 * that are dropped, counted, and reported in one warning as soon as a write gets through again. pino
 * flushes what is buffered when the process exits.
 */
export function daemonLogger(level: LevelWithSilent, maxBufferedKb: number): Logger {
  const destination = pino.destination({ dest: 2, sync: false, maxLength: maxBufferedKb * 1024 });
  const logger = pino(
    {
      level,
      base: { service: 'wasm-policyd' },
      // What log pipelines (Loki, Elasticsearch, Cloud Logging) read without a parser: ISO time and level names.
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  let dropped = 0;
  destination.on('drop', () => {
    dropped++;
  });
  destination.on('write', () => {
    if (dropped === 0) return;
    const count = dropped;
    dropped = 0;
    logger.warn({ dropped: count, maxBufferedKb }, 'log lines dropped (stderr not read)');
  });
  return logger;
}
