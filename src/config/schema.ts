import { z } from 'zod';
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
  maxEventLoopLagMs: nonNegative.default(20),
  timeoutMs: positive.default(60_000),
  maxTimeoutMs: positive.default(600_000),
  memoryLimitMb: positive.max(4096).default(256),
  maxGuestMemoryMb: nonNegative.default(0),
  maxReceiveMb: positive.default(64),
  maxPolicies: positive.default(1000),
  maxPolicyMb: positive.default(1024),
  maxConcurrentLoads: positive.default(4),
  maxHostCalls: positive.default(100),
  maxViolations: positive.default(10_000),
  fileRoot: z.string().default(''),
  stateDir: z.string().default(''),
  guestLogLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info'),
  graceMs: nonNegative.default(10_000),
  reflection: z.boolean().default(true),
  http: z
    .strictObject({
      allowedHostnames: z.array(z.string().min(1)).default([]),
      permittedRequestHosts: z.array(z.string().min(1)).default(['*']),
      allowPrivateNetwork: z.boolean().default(false),
      maxResponseMb: positive.default(50),
      requestTimeoutMs: positive.default(30_000),
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
  log: z
    .strictObject({
      level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('info'),
      decisions: z.boolean().default(true),
      maxLinesPerSecond: positive.default(2000),
    })
    .prefault({}),
  grpc: z
    .strictObject({
      keepaliveTimeMs: positive.default(120_000),
      maxConnectionAgeMs: nonNegative.default(0),
      maxConnectionAgeGraceMs: nonNegative.default(30_000),
      maxConcurrentStreams: positive.default(256),
      maxSessionMemoryMb: positive.default(10),
      maxConnectionIdleMs: nonNegative.default(300_000),
    })
    .prefault({}),
});

export type DaemonConfig = z.infer<typeof configSchema>;
