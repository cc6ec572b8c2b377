import { z } from 'zod';
import { DEFAULTS } from './defaults.js';
import { defaultSocketPath } from '../server/socket-path.js';

const positive = z.number().int().positive();
const nonNegative = z.number().int().nonnegative();
const token = z.string().min(16, 'tokens must be at least 16 characters');

/** The daemon configuration with its defaults; unknown keys are errors that name the key. */
export const configSchema = z.strictObject({
  listen: z
    .array(z.string().min(1))
    .min(1)
    .default(() => ['127.0.0.1:50051', `unix://${defaultSocketPath()}`]),
  policies: z.array(z.string().min(1)).default([]),
  watch: z.boolean().default(true),
  threads: nonNegative.default(0),
  maxQueue: nonNegative.default(0),
  maxEventLoopLagMs: nonNegative.default(DEFAULTS.maxEventLoopLagMs),
  timeoutMs: positive.default(DEFAULTS.timeoutMs),
  maxTimeoutMs: positive.default(DEFAULTS.maxTimeoutMs),
  memoryLimitMb: positive.max(4096).default(DEFAULTS.memoryLimitMb),
  maxGuestMemoryMb: nonNegative.default(0),
  maxReceiveMb: positive.default(DEFAULTS.maxReceiveMb),
  maxPolicies: positive.default(DEFAULTS.maxPolicies),
  maxPolicyMb: positive.default(DEFAULTS.maxPolicyMb),
  maxConcurrentLoads: positive.default(DEFAULTS.maxConcurrentLoads),
  maxHostCalls: positive.default(DEFAULTS.maxHostCalls),
  maxViolations: positive.default(DEFAULTS.maxViolations),
  fileRoot: z.string().default(''),
  stateDir: z.string().default(''),
  guestLogLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info'),
  graceMs: nonNegative.default(DEFAULTS.graceMs),
  reflection: z.boolean().default(true),
  http: z
    .strictObject({
      allowedHostnames: z.array(z.string().min(1)).default([]),
      permittedRequestHosts: z.array(z.string().min(1)).default(['*']),
      allowPrivateNetwork: z.boolean().default(false),
      maxResponseMb: positive.default(DEFAULTS.http.maxResponseMb),
      requestTimeoutMs: positive.default(DEFAULTS.http.requestTimeoutMs),
    })
    .prefault({}),
  oci: z
    .strictObject({
      /** Registries (`host:port`) spoken to over plain HTTP. */
      plainHttp: z.array(z.string().min(1)).default([]),
      allowPrivateNetwork: z.boolean().default(false),
      /** Docker config file with registry credentials; empty: $DOCKER_CONFIG/config.json or ~/.docker/config.json. */
      dockerConfig: z.string().default(''),
      /** Repositories (`oci://registry/repository`) an evaluation naming an unknown digest is fetched from. */
      onDemand: z.array(z.string().startsWith('oci://', 'onDemand entries are oci://registry/repository')).default([]),
    })
    .prefault({}),
  signatures: z
    .strictObject({
      /** PEM public keys (cosign.pub); set: only OCI policies signed by one of them load. */
      keys: z.array(z.string().min(1)).default([]),
      allowUnsigned: z.boolean().default(false),
    })
    .prefault({}),
  discovery: z
    .strictObject({
      grpcAddress: z.string().optional(),
      grpcToken: z.string().optional(),
      grpcTls: z.boolean().default(false),
      file: z.string().optional(),
    })
    .prefault({})
    .refine((d) => !(d.grpcAddress && d.file), { message: 'set either discovery.grpcAddress or discovery.file, not both' }),
  tls: z
    .strictObject({
      cert: z.string().optional(),
      key: z.string().optional(),
      clientCa: z.string().optional(),
      insecure: z.boolean().default(false),
    })
    .prefault({})
    .refine((t) => Boolean(t.cert) === Boolean(t.key), { message: 'tls.cert and tls.key go together' })
    .refine((t) => !t.clientCa || t.cert, { message: 'tls.clientCa (mTLS) needs tls.cert and tls.key' }),
  auth: z
    .strictObject({
      adminTokens: z.array(token).default([]),
      evaluateTokens: z.array(token).default([]),
      adminIdentities: z.array(z.string().min(1)).default([]),
      anonymous: z.enum(['auto', 'none', 'evaluate', 'admin']).default('auto'),
    })
    .prefault({}),
  admin: z.strictObject({ listen: z.string().default('') }).prefault({}),
  tracing: z
    .strictObject({
      /** OTLP/HTTP traces URL; empty: on only when the OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT environment names one. */
      endpoint: z.string().default(''),
      sampleRatio: z.number().min(0).max(1).default(1),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('info'),
      decisions: z.boolean().default(true),
      /** Decision-line fields replaced by "[masked]" (pino redact paths: args.token, violations, caller.subject…). */
      decisionMask: z.array(z.string().min(1)).default([]),
      maxLinesPerSecond: positive.default(DEFAULTS.log.maxLinesPerSecond),
      maxBufferedKb: positive.default(DEFAULTS.log.maxBufferedKb),
    })
    .prefault({}),
  grpc: z
    .strictObject({
      keepaliveTimeMs: positive.default(DEFAULTS.grpc.keepaliveTimeMs),
      maxConnectionAgeMs: nonNegative.default(0),
      maxConnectionAgeGraceMs: nonNegative.default(DEFAULTS.grpc.maxConnectionAgeGraceMs),
      maxConcurrentStreams: positive.default(DEFAULTS.grpc.maxConcurrentStreams),
      maxSessionMemoryMb: positive.default(DEFAULTS.grpc.maxSessionMemoryMb),
      maxConnectionIdleMs: nonNegative.default(DEFAULTS.grpc.maxConnectionIdleMs),
    })
    .prefault({}),
});

export type DaemonConfig = z.infer<typeof configSchema>;
