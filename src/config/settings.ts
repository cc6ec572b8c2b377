/**
 * Every daemon setting, once: its path in the YAML config file, its flag, its environment variable
 * (POLICYD_ + the path in upper snake case) and how it is read. `serve --help`, the config loader
 * and `config` (the effective configuration, secrets redacted) are all built from this table.
 */
export type SettingType = 'string' | 'number' | 'boolean' | 'list';

export interface Setting {
  /** Dotted path in the config file, e.g. `http.allowPrivateNetwork`. */
  path: string;
  type: SettingType;
  description: string;
  /** Redacted when the configuration is printed. */
  secret?: boolean;
  /** Values a string setting may take. */
  choices?: string[];
  /** The flag, when it is not the path in kebab case. */
  flag?: string;
}

export const SETTINGS: Setting[] = [
  {
    path: 'listen',
    type: 'list',
    flag: 'listen',
    description: 'addresses to serve gRPC on: host:port or unix:///path (a non-loopback TCP address needs TLS or tls.insecure)',
  },
  {
    path: 'policies',
    type: 'list',
    flag: 'policy',
    description:
      'policy documents, or directories of them, loaded at start-up and watched for changes; or oci://registry/repository[:tag|@sha256:…] refs, pulled at start-up',
  },
  { path: 'watch', type: 'boolean', description: 'reload policies when their files change' },
  { path: 'threads', type: 'number', description: 'worker threads (0: from the cgroup CPU quota, else the CPU count)' },
  {
    path: 'maxQueue',
    type: 'number',
    description: 'evaluations that may wait for a worker; more are refused with RESOURCE_EXHAUSTED (0: 8 per worker)',
  },
  {
    path: 'maxEventLoopLagMs',
    type: 'number',
    description: 'refuse new evaluations with RESOURCE_EXHAUSTED while the main event loop runs this late (0: never)',
  },
  { path: 'timeoutMs', type: 'number', description: 'evaluation timeout when neither request nor policy sets one (Chainloop: 60 s)' },
  { path: 'maxTimeoutMs', type: 'number', description: 'upper bound for any requested or per-policy timeout' },
  { path: 'memoryLimitMb', type: 'number', description: 'largest linear memory a policy may use, in MiB' },
  {
    path: 'maxGuestMemoryMb',
    type: 'number',
    description: 'budget for threads × memoryLimitMb, checked at start (0: 75 % of the container memory limit, no check without one)',
  },
  { path: 'maxReceiveMb', type: 'number', description: 'largest gRPC request accepted, in MiB' },
  {
    path: 'maxPolicies',
    type: 'number',
    description: 'policies that may be loaded at once; a new name beyond it is refused with RESOURCE_EXHAUSTED',
  },
  { path: 'maxPolicyMb', type: 'number', description: 'total WebAssembly of the loaded policies, in MiB' },
  {
    path: 'maxConcurrentLoads',
    type: 'number',
    description: 'LoadPolicy calls that may compile at once; more are refused with RESOURCE_EXHAUSTED',
  },
  {
    path: 'stateDir',
    type: 'string',
    description: 'directory where policies loaded through the API are kept, and restored from at start (empty: not kept)',
  },
  {
    path: 'maxHostCalls',
    type: 'number',
    description: 'HTTP and chainloop_discover calls one evaluation may make; beyond, it fails with RESOURCE_EXHAUSTED',
  },
  {
    path: 'maxViolations',
    type: 'number',
    description: 'violations one policy script may report per evaluation; more fail with RESOURCE_EXHAUSTED',
  },
  { path: 'fileRoot', type: 'string', description: 'directory file:// refs of LoadPolicy may read from (empty: file:// refs are refused)' },
  {
    path: 'guestLogLevel',
    type: 'string',
    choices: ['trace', 'debug', 'info', 'warn', 'error'],
    description: 'lowest guest log level kept',
  },
  { path: 'graceMs', type: 'number', description: 'how long in-flight calls may finish after SIGTERM' },
  { path: 'reflection', type: 'boolean', description: 'serve gRPC server reflection' },
  {
    path: 'http.allowedHostnames',
    type: 'list',
    flag: 'allowed-hostnames',
    description: "hosts every policy may reach (exact or glob), besides Chainloop's base list",
  },
  { path: 'http.permittedRequestHosts', type: 'list', description: 'globs bounding what a request may add with allowed_hostnames' },
  {
    path: 'http.allowPrivateNetwork',
    type: 'boolean',
    flag: 'allow-private-network',
    description: 'let policies reach loopback, private and link-local addresses (turns the SSRF guard off)',
  },
  { path: 'http.maxResponseMb', type: 'number', description: 'largest HTTP response a policy may read, in MiB (Chainloop: 50)' },
  { path: 'http.requestTimeoutMs', type: 'number', description: 'timeout of one HTTP request made by a policy' },
  { path: 'oci.plainHttp', type: 'list', description: 'registries (host:port) spoken to over plain HTTP instead of HTTPS' },
  {
    path: 'oci.allowPrivateNetwork',
    type: 'boolean',
    description: 'let registries resolve to loopback, private and link-local addresses (off: the SSRF guard applies)',
  },
  {
    path: 'oci.dockerConfig',
    type: 'string',
    description: 'Docker config file with registry credentials (empty: $DOCKER_CONFIG/config.json or ~/.docker/config.json)',
  },
  {
    path: 'oci.onDemand',
    type: 'list',
    description: 'repositories (oci://registry/repository) an Evaluate naming an unknown sha256 digest is pulled from',
  },
  {
    path: 'signatures.keys',
    type: 'list',
    flag: 'signature-key',
    description: 'PEM public keys (cosign.pub); when set, only OCI policies signed by one of them load',
  },
  { path: 'signatures.allowUnsigned', type: 'boolean', description: 'with signatures.keys: still load policies sent as bytes or files' },
  {
    path: 'discovery.grpcAddress',
    type: 'string',
    description: 'Chainloop control plane (ReferrerService) answering chainloop_discover: host:port or unix:///path',
  },
  { path: 'discovery.grpcToken', type: 'string', secret: true, description: 'bearer token for the control plane' },
  { path: 'discovery.grpcTls', type: 'boolean', description: 'use TLS (system roots) to reach the control plane' },
  { path: 'discovery.file', type: 'string', description: 'YAML/JSON list of referrer items answering chainloop_discover (local use)' },
  { path: 'tls.cert', type: 'string', description: 'server certificate (PEM) for TCP listeners; reloaded when it changes' },
  { path: 'tls.key', type: 'string', description: 'server private key (PEM)' },
  { path: 'tls.clientCa', type: 'string', description: 'CA bundle (PEM): clients must present a certificate it signed (mTLS)' },
  { path: 'tls.insecure', type: 'boolean', description: 'allow plaintext TCP on non-loopback addresses' },
  { path: 'auth.adminTokens', type: 'list', secret: true, description: 'bearer tokens that may load and unload policies, and evaluate' },
  { path: 'auth.evaluateTokens', type: 'list', secret: true, description: 'bearer tokens that may evaluate and list policies only' },
  {
    path: 'auth.adminIdentities',
    type: 'list',
    description:
      'client-certificate identities (subject CN or subjectAltName value) with the admin role; other verified certificates may evaluate',
  },
  {
    path: 'auth.anonymous',
    type: 'string',
    choices: ['auto', 'none', 'evaluate', 'admin'],
    description:
      'role of calls without credentials (auto: admin when no credentials are configured and every listener is loopback or a unix socket, else none)',
  },
  { path: 'admin.listen', type: 'string', description: 'host:port of the admin HTTP server (/metrics, /healthz, /readyz); empty: off' },
  { path: 'log.level', type: 'string', choices: ['trace', 'debug', 'info', 'warn', 'error', 'silent'], description: 'daemon log level' },
  {
    path: 'log.decisions',
    type: 'boolean',
    description: 'log one line per evaluation: policy, digest, material digest, args, caller, violations, outcome, duration',
  },
  {
    path: 'log.decisionMask',
    type: 'list',
    description: 'decision-line fields to mask, as paths (args.token, args.*, violations, caller.subject, materialName)',
  },
  {
    path: 'tracing.endpoint',
    type: 'string',
    description: 'OTLP/HTTP traces URL (http://collector:4318/v1/traces); empty: tracing is on only if OTEL_EXPORTER_OTLP_ENDPOINT is set',
  },
  {
    path: 'tracing.sampleRatio',
    type: 'number',
    description: 'share of new traces recorded; a call with a traceparent follows its caller’s decision',
  },
  {
    path: 'log.maxLinesPerSecond',
    type: 'number',
    description: 'evaluation log lines (decisions and guest logs) written per second; the rest are dropped and counted',
  },
  {
    path: 'log.maxBufferedKb',
    type: 'number',
    description: 'log output held while stderr is not being read; lines beyond it are dropped and counted, never waited for',
  },
  { path: 'grpc.keepaliveTimeMs', type: 'number', description: 'server keepalive ping interval' },
  { path: 'grpc.maxConnectionAgeMs', type: 'number', description: 'close connections after this long so clients rebalance (0: never)' },
  { path: 'grpc.maxConcurrentStreams', type: 'number', description: 'concurrent calls per HTTP/2 connection' },
  {
    path: 'grpc.maxSessionMemoryMb',
    type: 'number',
    description: "memory one HTTP/2 connection may buffer before its new streams are refused (Node's default: 10)",
  },
  { path: 'grpc.maxConnectionIdleMs', type: 'number', description: 'close connections idle this long (0: never)' },
  { path: 'grpc.maxConnectionAgeGraceMs', type: 'number', description: 'time given to calls on a connection being closed for age' },
];

export function envName(path: string): string {
  return `POLICYD_${path
    .replace(/\./g, '_')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toUpperCase()}`;
}

export function flagName(setting: Setting): string {
  return (
    setting.flag ??
    setting.path
      .replace(/\./g, '-')
      .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
      .toLowerCase()
  );
}
