import { chmod, rm } from 'node:fs/promises';
import { Server } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { DEFAULTS, MiB } from '../config/defaults.js';
import { PolicyEngineService, file_policyengine_v1_engine } from '../gen/policyengine/v1/engine_pb.js';
import type { PolicyEngine } from '../engine/policy-engine.js';
import type { Tracer } from '../telemetry/tracing.js';
import { policyServiceImplementation, type PolicyStore } from './policy-service.js';
import { admissionListener } from './admission.js';
import { Authorizer } from './authorization.js';
import { CertificateFileWatcher } from './certificate-files.js';
import { credentialsFor, type TlsFiles } from './credentials.js';
import { claimSocketPath } from './socket-path.js';
import { gateInterceptor } from './gate.js';
import { addReflection } from './reflection.js';
import { serviceDefinition } from './service-definition.js';

export interface ServerOptions {
  /** `host:port` for TCP, `unix:///path` (or `unix:path`) for a unix socket. */
  listen: string[];
  maxReceiveMessageBytes?: number;
  reflection?: boolean;
  tls?: TlsFiles;
  /** Plaintext TCP on non-loopback addresses. */
  allowInsecureTcp?: boolean;
  /** Who may call what; default: no credentials, anonymous callers have the admin role (local listeners only). */
  authorizer?: Authorizer;
  keepaliveTimeMs?: number;
  maxConnectionAgeMs?: number;
  maxConnectionAgeGraceMs?: number;
  /** Concurrent calls per HTTP/2 connection (grpc-js sets no limit). */
  maxConcurrentStreams?: number;
  /** Close connections idle this long; 0: never. */
  maxConnectionIdleMs?: number;
  /** Memory one HTTP/2 session may buffer (Node's maxSessionMemory), in MiB. */
  maxSessionMemoryMb?: number;
  /** Where LoadPolicy/UnloadPolicy are recorded for a restart (the state directory). */
  store?: PolicyStore;
  /** Traces every call (src/telemetry/tracing.ts). */
  tracer?: Tracer;
}

export const SERVICE_NAME = PolicyEngineService.typeName;

function socketPath(address: string): string | undefined {
  if (address.startsWith('unix://')) return address.slice('unix://'.length);
  if (address.startsWith('unix:')) return address.slice('unix:'.length);
  return undefined;
}

/**
 * The gRPC face of the engine: PolicyEngineService, grpc.health.v1 (overall "" live at once, the
 * engine service SERVING once marked ready) and reflection, on TCP and unix sockets.
 */
export class PolicyServer {
  readonly server: Server;
  readonly health = new HealthImplementation({ '': 'SERVING', [SERVICE_NAME]: 'NOT_SERVING' });
  /** Bound addresses, with the real port for `:0`. */
  readonly addresses: string[] = [];
  #accepting = true;
  #certificates: CertificateFileWatcher | undefined;

  constructor(
    readonly engine: PolicyEngine,
    private readonly options: ServerOptions,
  ) {
    const authorizer =
      options.authorizer ??
      new Authorizer(
        { adminTokens: [], evaluateTokens: [], adminIdentities: [], anonymous: 'auto' },
        options.listen,
        Boolean(options.tls?.clientCa),
      );
    this.server = new Server({
      interceptors: [
        gateInterceptor([
          (path, call) => authorizer.listener(path, call),
          admissionListener((admitted) => engine.refusal(undefined, admitted)),
        ]),
      ],
      'grpc.max_receive_message_length': options.maxReceiveMessageBytes ?? DEFAULTS.maxReceiveMb * MiB,
      'grpc.max_send_message_length': -1,
      'grpc.keepalive_time_ms': options.keepaliveTimeMs ?? DEFAULTS.grpc.keepaliveTimeMs,
      ...(options.maxConnectionAgeMs ? { 'grpc.max_connection_age_ms': options.maxConnectionAgeMs } : {}),
      'grpc.max_connection_age_grace_ms': options.maxConnectionAgeGraceMs ?? DEFAULTS.grpc.maxConnectionAgeGraceMs,
      'grpc.max_concurrent_streams': options.maxConcurrentStreams ?? DEFAULTS.grpc.maxConcurrentStreams,
      'grpc-node.max_session_memory': options.maxSessionMemoryMb ?? DEFAULTS.grpc.maxSessionMemoryMb,
      ...(options.maxConnectionIdleMs !== 0
        ? { 'grpc.max_connection_idle_ms': options.maxConnectionIdleMs ?? DEFAULTS.grpc.maxConnectionIdleMs }
        : {}),
    });
    this.server.addService(
      serviceDefinition(PolicyEngineService, { lazyRequests: true }),
      policyServiceImplementation(engine, {
        accepting: () => this.#accepting,
        store: options.store,
        tracer: options.tracer,
        identify: (metadata, peer) => authorizer.callerOf(metadata, peer),
      }),
    );
    this.health.addToServer(this.server);
    if (options.reflection ?? true) addReflection(this.server, [file_policyengine_v1_engine]);
  }

  async listen(): Promise<string[]> {
    const tls = this.options.tls;
    // One watcher for every TCP listener; a certificate that cannot be used stops start-up here.
    if (tls)
      this.#certificates = await CertificateFileWatcher.start(tls, tls.refreshMs ?? DEFAULTS.tlsRefreshMs, tls.onRejected ?? (() => {}));
    for (const address of this.options.listen) {
      const path = socketPath(address);
      if (path !== undefined) await claimSocketPath(path);
      const credentials = credentialsFor(address, this.#certificates, this.options.allowInsecureTcp ?? false);
      const port = await new Promise<number>((resolve, reject) =>
        this.server.bindAsync(address, credentials, (err, p) =>
          err ? reject(new Error(`cannot listen on ${address}: ${err.message}`)) : resolve(p),
        ),
      );
      if (path !== undefined) {
        await chmod(path, 0o600);
        this.addresses.push(`unix://${path}`);
      } else {
        this.addresses.push(address.replace(/:0$/, `:${port}`));
      }
    }
    return this.addresses;
  }

  markReady(): void {
    this.health.setStatus(SERVICE_NAME, 'SERVING');
  }

  /** Stop taking work, let in-flight calls finish for up to `graceMs`, then close the listeners (the engine is its owner's to close). */
  async shutdown(graceMs: number = DEFAULTS.graceMs): Promise<void> {
    this.#accepting = false;
    this.health.setStatus('', 'NOT_SERVING');
    this.health.setStatus(SERVICE_NAME, 'NOT_SERVING');
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    this.#certificates?.close();
    for (const address of this.addresses) {
      const path = socketPath(address);
      if (path !== undefined) await rm(path, { force: true });
    }
  }
}
