import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EngineObserver, EvaluationEvent, PolicyEngine } from '../engine/policy-engine.js';

/** Prometheus metrics of the daemon, on their own registry (served at /metrics on the admin port). */
export class DaemonMetrics implements EngineObserver {
  readonly registry = new Registry();
  readonly evaluations = new Counter({
    name: 'policyd_evaluations_total',
    help: 'Evaluations by policy and outcome (ok, or the ErrorInfo reason of a failure)',
    labelNames: ['policy', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'policyd_evaluation_duration_seconds',
    help: 'Evaluation latency, from request to result, by policy',
    labelNames: ['policy'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly loadFailures = new Counter({
    name: 'policyd_policy_load_failures_total',
    help: 'Policy loads that failed, by ErrorInfo reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'policyd_' });
  }

  evaluated({ policy, outcome, seconds }: EvaluationEvent): void {
    this.evaluations.inc({ policy, outcome });
    this.latency.observe({ policy }, seconds);
  }

  loadFailed(reason: string): void {
    this.loadFailures.inc({ reason });
  }

  /** Gauges read from the engine at scrape time. */
  watch(engine: PolicyEngine): void {
    new Gauge({
      name: 'policyd_policies_loaded',
      help: 'Policies loaded',
      registers: [this.registry],
      collect() {
        this.set(engine.policyCount);
      },
    });
    new Gauge({
      name: 'policyd_queue_depth',
      help: 'Evaluations waiting for a worker',
      registers: [this.registry],
      collect() {
        this.set(engine.pool.queueSize);
      },
    });
    new Gauge({
      name: 'policyd_pool_utilization',
      help: "Share of the pool workers' time spent busy (0-1): their event loops' utilization, each since it started",
      registers: [this.registry],
      collect() {
        this.set(engine.pool.utilization);
      },
    });
    new Counter({
      name: 'policyd_pool_workers_started_total',
      help: 'Worker threads started, the first ones included: one more for every worker lost (a crash, or a running evaluation stopped by its timeout or its caller)',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(engine.pool.workersStarted);
      },
    });
    new Gauge({
      name: 'policyd_pool_threads',
      help: 'Worker threads',
      registers: [this.registry],
      collect() {
        this.set(engine.pool.threads);
      },
    });
  }
}
