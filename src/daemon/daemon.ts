import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { MiB } from '../config/defaults.js';
import type { DaemonConfig } from '../config/schema.js';
import type { DiscoveryBackend } from '../discovery/backend.js';
import { GrpcDiscovery } from '../discovery/grpc-backend.js';
import { StaticDiscovery } from '../discovery/static-backend.js';
import { PolicyEngine, type EngineOptions } from '../engine/policy-engine.js';
import { errorMessage } from '../errors/policyd-error.js';
import { isOciRef } from '../oci/reference.js';
import { RegistryClient } from '../oci/registry-client.js';
import { SignatureVerifier } from '../oci/signatures.js';
import { startTracing, type Tracing } from '../telemetry/tracing.js';
import { VERSION } from '../version.js';
import { Authorizer } from '../server/authorization.js';
import { PolicyServer } from '../server/server.js';
import { startAdminServer } from './admin-server.js';
import { checkGuestMemory, defaultThreads } from './cgroup-limits.js';
import { DecisionLog } from './decision-log.js';
import { DaemonMetrics } from './metrics.js';
import { PolicyDirectory } from './policy-directory.js';
import { PolicyState } from './policy-state.js';

export interface RunningDaemon {
  engine: PolicyEngine;
  server: PolicyServer;
  metrics: DaemonMetrics;
  policies: PolicyDirectory;
  addresses: string[];
  adminAddress?: string;
  /** Drain (health NOT_SERVING, new calls UNAVAILABLE, in-flight ones finish within graceMs), then close. */
  stop(): Promise<void>;
}

function discoveryFrom(config: DaemonConfig): DiscoveryBackend | undefined {
  const d = config.discovery;
  if (d.grpcAddress) return new GrpcDiscovery({ address: d.grpcAddress, token: d.grpcToken, tls: d.grpcTls });
  if (d.file) return new StaticDiscovery(d.file);
  return undefined;
}

/** The keys policies must be signed with, read (and checked to be public keys) at start. */
function signaturesFrom(config: DaemonConfig): EngineOptions['signatures'] {
  if (config.signatures.keys.length === 0) return undefined;
  const keys = config.signatures.keys.map((file) => {
    try {
      return { name: file, key: createPublicKey(readFileSync(file)) };
    } catch (err) {
      throw new Error(`signatures.keys: ${file} is not a PEM public key (${errorMessage(err)}); give the cosign.pub of the signing key`);
    }
  });
  return { verifier: new SignatureVerifier(keys), allowUnsigned: config.signatures.allowUnsigned };
}

/** Tracing when an OTLP endpoint is configured (or named by the standard OTEL_EXPORTER_OTLP_* environment). */
function tracingFrom(config: DaemonConfig): Tracing | undefined {
  const fromEnvironment = Boolean(process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_ENDPOINT);
  if (!config.tracing.endpoint && !fromEnvironment) return undefined;
  return startTracing({ endpoint: config.tracing.endpoint, sampleRatio: config.tracing.sampleRatio, serviceVersion: VERSION });
}

/** Everything `serve` runs, assembled from one validated configuration. */
export async function startDaemon(config: DaemonConfig, logger: Logger): Promise<RunningDaemon> {
  // Checked before anything starts: an unsafe listener/credential combination stops here.
  const authorizer = new Authorizer(config.auth, config.listen, Boolean(config.tls.clientCa));
  const metrics = new DaemonMetrics();
  const threads = config.threads || defaultThreads();
  checkGuestMemory(threads, config.memoryLimitMb, config.maxGuestMemoryMb);
  const tracing = tracingFrom(config);
  const engine = new PolicyEngine({
    tracer: tracing?.tracer,
    threads,
    maxQueue: config.maxQueue || undefined,
    maxEventLoopLagMs: config.maxEventLoopLagMs,
    defaultTimeoutMs: config.timeoutMs,
    maxTimeoutMs: config.maxTimeoutMs,
    memoryLimitBytes: config.memoryLimitMb * MiB,
    maxPolicies: config.maxPolicies,
    maxPolicyBytes: config.maxPolicyMb * MiB,
    maxConcurrentLoads: config.maxConcurrentLoads,
    maxHostCalls: config.maxHostCalls,
    maxViolations: config.maxViolations,
    fileRoot: config.fileRoot ? resolve(config.fileRoot) : undefined,
    allowedHostnames: config.http.allowedHostnames,
    permittedRequestHosts: config.http.permittedRequestHosts,
    http: {
      allowPrivateNetwork: config.http.allowPrivateNetwork,
      maxResponseBytes: config.http.maxResponseMb * MiB,
      requestTimeoutMs: config.http.requestTimeoutMs,
    },
    guestLogLevel: config.guestLogLevel,
    discovery: discoveryFrom(config),
    oci: {
      client: new RegistryClient({
        plainHttp: config.oci.plainHttp,
        allowPrivateNetwork: config.oci.allowPrivateNetwork,
        dockerConfig: config.oci.dockerConfig || undefined,
        requestTimeoutMs: config.http.requestTimeoutMs,
      }),
      onDemand: config.oci.onDemand,
    },
    signatures: signaturesFrom(config),
    observers: [
      metrics,
      new DecisionLog(logger, {
        decisions: config.log.decisions,
        maxLinesPerSecond: config.log.maxLinesPerSecond,
        mask: config.log.decisionMask,
      }),
    ],
  });
  metrics.watch(engine);
  const state = config.stateDir ? new PolicyState(resolve(config.stateDir), logger) : undefined;
  const server = new PolicyServer(engine, {
    store: state,
    tracer: tracing?.tracer,
    listen: config.listen,
    maxReceiveMessageBytes: config.maxReceiveMb * MiB,
    reflection: config.reflection,
    tls:
      config.tls.cert && config.tls.key
        ? {
            cert: config.tls.cert,
            key: config.tls.key,
            clientCa: config.tls.clientCa,
            onRejected: (error: string) => logger.error({ error }, 'TLS files changed but cannot be used'),
          }
        : undefined,
    allowInsecureTcp: config.tls.insecure,
    authorizer,
    keepaliveTimeMs: config.grpc.keepaliveTimeMs,
    maxConnectionAgeMs: config.grpc.maxConnectionAgeMs,
    maxConnectionAgeGraceMs: config.grpc.maxConnectionAgeGraceMs,
    maxConcurrentStreams: config.grpc.maxConcurrentStreams,
    maxSessionMemoryMb: config.grpc.maxSessionMemoryMb,
    maxConnectionIdleMs: config.grpc.maxConnectionIdleMs,
  });
  const files = config.policies.filter((p) => !isOciRef(p));
  const pulled = config.policies.filter(isOciRef);
  const policies = new PolicyDirectory(engine, files, logger);
  let ready = false;
  let admin: Awaited<ReturnType<typeof startAdminServer>> | undefined;
  try {
    const addresses = await server.listen();
    if (config.admin.listen) admin = await startAdminServer(config.admin.listen, metrics.registry, { ready: () => ready });
    logger.info({ addresses, admin: admin?.address, threads: engine.pool.threads }, 'listening');
    // What the API loaded before a restart comes first; the operator's files then win on a shared name.
    if (state) logger.info({ stateDir: state.dir, ...(await state.restore(engine)) }, 'state restored');
    // Pulled before the files, which win on a shared name. A configured ref that cannot be pulled stops
    // the start: a replica must not report ready without a policy its operator asked for.
    for (const ref of pulled) {
      const { policy } = await engine.load({ type: 'ref', ref });
      logger.info({ policy: policy.name, digest: policy.digest, ref }, 'policy pulled');
    }
    await policies.loadAll();
    if (config.watch && files.length > 0) policies.watch();
    server.markReady();
    ready = true;
    logger.info({ policies: engine.policyCount }, 'ready');
    return {
      engine,
      server,
      metrics,
      policies,
      addresses,
      adminAddress: admin?.address,
      async stop() {
        ready = false;
        policies.close();
        await server.shutdown(config.graceMs);
        await engine.close();
        await admin?.close();
        await tracing?.shutdown();
      },
    };
  } catch (err) {
    policies.close();
    await server.shutdown(0);
    await engine.close();
    await admin?.close();
    await tracing?.shutdown();
    throw err;
  }
}
