/**
 * Every default of the daemon, once, in the manner of piscina's typed defaults object: the config
 * schema, the engine, the pool and the server read them here, so a library user (an engine without a
 * config file) and an operator (the schema) get the same values.
 */
export const DEFAULTS = {
  /** Evaluation timeout when neither request nor policy sets one (Chainloop: 60 s). */
  timeoutMs: 60_000,
  maxTimeoutMs: 600_000,
  memoryLimitMb: 256,
  maxReceiveMb: 64,
  maxPolicies: 1000,
  maxPolicyMb: 1024,
  maxConcurrentLoads: 4,
  maxHostCalls: 100,
  maxViolations: 10_000,
  maxEventLoopLagMs: 20,
  graceMs: 10_000,
  /**
   * How long an evaluation its caller cancelled may still run before it is stopped. Stopping a running
   * guest means terminating its worker, and a new worker costs tens of milliseconds of CPU against well
   * under one for most evaluations: a client that cancels must not cost the daemon a worker each time.
   */
  cancelGraceMs: 100,
  /** The queue is this many evaluations per worker unless set: short, so accepted work waits little. */
  queuePerWorker: 8,
  /**
   * Tasks a pool worker may hold, the one it runs included: a worker goes on to the next without a
   * round trip through the main thread, and the main thread answers several results per turn of its
   * event loop. One per worker cost the main thread ~1.6 times the CPU per evaluation
   * (bench/RESULTS.md, 2026-11-27 (night)). More than this lets a quick evaluation wait longer behind
   * a slow one on the same worker.
   */
  tasksPerWorker: 4,
  /**
   * Calls one pool task may carry when calls wait (src/engine/task-batches.ts): piscina's cost per task
   * is paid once for them all, but their answers come back together.
   */
  callsPerTask: 8,
  /** Guest logs kept per evaluation, and the largest guest output. */
  maxLogEntries: 1000,
  maxOutputMb: 16,
  /** Extism var store per evaluation (Chainloop: 1 MiB). */
  maxVarBytes: 2 ** 20,
  documentParseMs: 10_000,
  /**
   * Each pool worker's V8 young generation, in MiB (V8 keeps a third of it per semi-space). Node 20
   * sized it at 48 (16 MiB semi-spaces); Node 24's V8 sizes it from the heap limit, up to 192 on a
   * machine with a few GiB, and a worker that makes a policy instance per evaluation grows into all of
   * it over ~75,000 evaluations: +140 MB of RSS per worker that looked like a leak (docs/design-notes.md).
   */
  workerYoungGenerationMb: 48,
  /**
   * External memory (guest memories, inputs) a thread takes on before it collects its garbage itself:
   * V8's own default trigger, which the daemon's flags turn off (src/runtime/garbage-budget.ts says why).
   */
  threadGarbageMb: 64,
  /** How often TLS files are re-read. */
  tlsRefreshMs: 10_000,
  http: { maxResponseMb: 50, requestTimeoutMs: 30_000, maxRedirects: 10 },
  grpc: {
    keepaliveTimeMs: 120_000,
    maxConnectionAgeGraceMs: 30_000,
    maxConcurrentStreams: 256,
    maxSessionMemoryMb: 10,
    maxConnectionIdleMs: 300_000,
  },
  log: { maxLinesPerSecond: 2000, maxBufferedKb: 4096 },
} as const;

export const MiB = 2 ** 20;

/**
 * V8 flags the daemon needs from the command line (a running isolate cannot be given them, and they
 * reach every thread): the main thread's young generation at the pool workers' size
 * (DEFAULTS.workerYoungGenerationMb, a third per semi-space), and garbage collected by each thread's
 * GarbageBudget rather than on V8's external-memory trigger (src/runtime/garbage-budget.ts).
 * Every launcher passes them — the Dockerfile, the `wasm-policyd` bin's shebang, `make run`, the
 * benchmark and the tests that start `serve` — and test/unit/deploy.test.ts checks the files that cannot
 * import this.
 */
export const DAEMON_NODE_FLAGS = [
  `--max-semi-space-size=${DEFAULTS.workerYoungGenerationMb / 3}`,
  '--external-memory-accounted-in-global-limit',
  '--expose-gc',
] as const;
