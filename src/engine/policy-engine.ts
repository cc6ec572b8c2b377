import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { BroadcastChannel, type TransferListItem } from 'node:worker_threads';
import { MaterialKind } from '../gen/policyengine/v1/engine_pb.js';
import { DEFAULTS, MiB } from '../config/defaults.js';
import { PolicydError } from '../errors/policyd-error.js';
import { timeoutMessage } from '../errors/chainloop-messages.js';
import type { EvaluableMaterial } from '../materials/evaluable-input.js';
import { evaluableInput, evaluableMaterial, type MaterialInput, type SharedEvaluableInput } from '../materials/evaluable.js';
import { isKnownKind } from '../materials/kinds.js';
import type { DiscoveryBackend } from '../discovery/backend.js';
import { BASE_ALLOWED_HOSTNAMES, MAX_HOST_PATTERN, MAX_REQUESTED_HOSTS, matchesHostPattern } from '../net/allowed-hosts.js';
import { DEFAULT_HTTP_LIMITS, type HttpLimits } from '../net/http-fetch.js';
import { DEFAULT_REMOTE_FETCH, fetchDocument } from '../net/fetch-document.js';
import { EventLoopLag } from './event-loop-lag.js';
import { garbage } from '../runtime/garbage-budget.js';
import { epochMs } from '../telemetry/clock.js';
import { ROOT_CONTEXT, endSpan, recordSpan, trace, type Context, type Tracer } from '../telemetry/tracing.js';
import { openHostChannel } from './host-bridge.js';
import { computeArgs } from '../policies/args.js';
import { DocumentParser } from '../policies/document-parser.js';
import { pullPolicy } from '../oci/distribution.js';
import { atDigest, formatOciReference, parseOciReference, type OciReference } from '../oci/reference.js';
import type { RegistryClient } from '../oci/registry-client.js';
import type { SignatureVerifier } from '../oci/signatures.js';
import { scriptSetup } from '../worker/task.js';
import { resolvePolicy, type PolicySource, type ResolvedPolicy, type SelfContainedSource } from '../policies/loader.js';
import { PolicyRegistry, type AddResult, type LoadedPolicy, type LoadedScript, type PolicyLimits } from '../policies/registry.js';
import { PAGE_BYTES } from '../wasm/memory-limit.js';
import {
  RETIRED_SETUPS_CHANNEL,
  type GuestLogLevel,
  type LogRecord,
  type ScriptOutcome,
  type ScriptResult,
  type ScriptSetup,
} from '../worker/protocol.js';

export type { GuestLogLevel, LogRecord };
import { mergeResults, type MergedResult } from './merge.js';
import { ScriptPool, type PoolOptions } from './pool.js';

export interface LoadResult extends AddResult {
  /** The policy's source with every script inside: loading it again gives the same digest. */
  replay: SelfContainedSource;
}

/** The metrics label of requests that name no loaded policy. */
const UNKNOWN_POLICY = '(unknown)';

export interface EngineOptions extends Omit<PoolOptions, 'onWorkerError' | 'workerFile' | 'tasksPerWorker' | 'callsPerTask'> {
  /** Timeout when the request sets none; Chainloop's verifier uses 60 s. */
  defaultTimeoutMs?: number;
  /** Upper bound for any requested timeout. */
  maxTimeoutMs?: number;
  /** Largest linear memory a script may use; a policy may ask for less. */
  memoryLimitBytes?: number;
  /** Directory `file://` policy refs are read from; undefined: they are refused. */
  fileRoot?: string;
  /** Hosts every policy may reach, besides Chainloop's base list and a request's own. */
  allowedHostnames?: string[];
  guestLogLevel?: GuestLogLevel;
  maxLogEntries?: number;
  /** Largest guest output accepted. */
  maxOutputBytes?: number;
  /** Extism var store per evaluation (Chainloop: 1 MiB). */
  maxVarBytes?: number;
  /** HTTP and discover calls one evaluation may make. */
  maxHostCalls?: number;
  /** Violations one script's output may hold (the output itself is capped by maxOutputBytes). */
  maxViolations?: number;
  /** Policies that may be loaded at once (a new name beyond it is refused; a new version of a name is not). */
  maxPolicies?: number;
  /** Total WebAssembly bytes of the loaded policies. */
  maxPolicyBytes?: number;
  /** LoadPolicy calls that may run at once (each compiles and instantiates); more are refused. */
  maxConcurrentLoads?: number;
  /** Time a policy document may take to parse (on its own thread) before it is refused. */
  documentParseMs?: number;
  http?: Partial<HttpLimits>;
  /** Globs bounding what a request may add with `allowed_hostnames` (default: anything). */
  permittedRequestHosts?: string[];
  /** Answers chainloop_discover; without one the guest gets 0, as in Chainloop without a control plane. */
  discovery?: DiscoveryBackend;
  observers?: EngineObserver[];
  /**
   * Registry access for `oci://` refs; undefined: they are refused. An evaluation naming an unknown
   * digest is looked up in the `onDemand` repositories (`oci://registry/repository`) and loaded.
   */
  oci?: { client: RegistryClient; onDemand?: string[] };
  /** Set: policies load only as OCI artifacts signed by one of the verifier's keys, unless unsigned ones are allowed. */
  signatures?: { verifier: SignatureVerifier; allowUnsigned: boolean };
  /** Records evaluation spans (src/telemetry/tracing.ts); undefined: none are made. */
  tracer?: Tracer;
  /** Refuse new evaluations (OVERLOADED) while the main thread's event loop runs this late; 0: never. */
  maxEventLoopLagMs?: number;
}

/**
 * What an evaluation ended with, for observers (metrics, the daemon's decision log). `policy` is a
 * loaded policy's name, or '(unknown)' for a request shed before its policy was looked up.
 */
export interface EvaluationEvent {
  policy: string;
  /** `ok`, or the ErrorInfo reason of the failure. */
  outcome: string;
  seconds: number;
  /** Absent when the request was refused before it was read. */
  request?: EvaluationRequest;
  /** Set when the evaluation produced a result. */
  result?: EvaluationOutcome;
  /** Set when it failed after its policy was found. */
  error?: PolicydError;
  digest?: string;
  evaluationId?: string;
}

/**
 * Told about what the engine does, in the manner of OPA's decision-logger hook: the engine counts and
 * logs nothing itself; the daemon attaches metrics and a decision log.
 */
export interface EngineObserver {
  evaluated(event: EvaluationEvent): void;
  loadFailed(reason: string): void;
  /** A worker failed between evaluations; piscina replaces it. */
  workerFailed?(err: unknown): void;
}

export interface RequestedLimits {
  timeoutMs?: number;
  maxMemoryBytes?: number;
}

export interface EvaluationRequest {
  /** Name or digest. */
  policy: string;
  material: MaterialInput;
  /** Set when other evaluations read the same material (EvaluateBatch): its input is built once, for all. */
  shared?: SharedEvaluableInput;
  args?: Record<string, string>;
  /** The request's own timeout. */
  timeoutMs?: number;
  /** Time left until the caller's deadline (gRPC), if it set one. */
  deadlineMs?: number;
  includeRawData?: boolean;
  allowedHostnames?: string[];
  /** Aborted when the caller gives up (client cancel). */
  signal?: AbortSignal;
  /** The trace this evaluation belongs to (the RPC's span). */
  traceContext?: Context;
  /** Who asked, as the decision log names them; asked only by an observer that writes it. */
  caller?: () => Caller;
}

/** A caller as authorization saw it: its role, and a certificate identity or a token fingerprint. */
export interface Caller {
  role: string;
  subject: string;
}

export interface EvaluationOutcome {
  policy: LoadedPolicy;
  result: MergedResult;
  logs: LogRecord[];
  raw: { input: Uint8Array; output: Uint8Array }[];
  evaluationId: string;
  durationMs: number;
  /** Arguments the policy does not declare, dropped as Chainloop does. */
  ignoredArgs: string[];
}

const PROBE_TIMEOUT_MS = 10_000;

/** WebAssembly bytes the budget (maxPolicyBytes) counts: of loaded policies, and of one about to load. */
const heldBytes = (policies: LoadedPolicy[]) => policies.reduce((n, p) => n + p.scripts.reduce((m, s) => m + s.sizeBytes, 0), 0);
const resolvedBytes = (resolved: ResolvedPolicy) => resolved.scripts.reduce((n, s) => n + s.bytes.byteLength, 0);
const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** True for a buffer made for this evaluation (not a view into a request or Node's shared pool). */
function ownsWholeBuffer(bytes: Uint8Array): boolean {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
}
const EMPTY = new Uint8Array(0);

/**
 * A material to post to a worker: its content copied out when it is a view into a larger buffer (the
 * request's), since posting a view copies all of the buffer under it. (`new Uint8Array`, not `slice`:
 * a Buffer's slice is another view.)
 */
function workerMaterial(material: EvaluableMaterial): EvaluableMaterial {
  return ownsWholeBuffer(material.content) ? material : { ...material, content: new Uint8Array(material.content) };
}
/**
 * From this size up a material's bytes are moved to the worker rather than copied. Smaller ones are
 * copied: a call that transfers anything runs alone and carries its whole setup (ScriptPool.run),
 * which costs more than copying a few KiB.
 */
const LARGE_INPUT_BYTES = 64 * 1024;
/** Setup ids handed out in this process (they only need to be unique within it). */
let setupCount = 0;

/**
 * Loads policies into the registry and evaluates materials on the worker pool. The gRPC service and
 * the CLI are both thin layers over this.
 */
export class PolicyEngine {
  readonly #registry = new PolicyRegistry((policy) => this.#retire(policy));
  readonly pool: ScriptPool;
  readonly #options: Required<
    Omit<
      EngineOptions,
      | 'threads'
      | 'maxQueue'
      | 'http'
      | 'discovery'
      | 'observers'
      | 'maxEventLoopLagMs'
      | 'fileRoot'
      | 'documentParseMs'
      | 'oci'
      | 'signatures'
      | 'tracer'
    >
  > & {
    http: HttpLimits;
    fileRoot: string | undefined;
  };
  readonly #observers: EngineObserver[];
  readonly #lag: EventLoopLag | undefined;
  readonly #maxLagMs: number;
  readonly #discovery: DiscoveryBackend | undefined;
  #loading = 0;
  readonly #documents: DocumentParser;
  readonly #registryClient: RegistryClient | undefined;
  readonly #onDemand: OciReference[];
  readonly #signatures: EngineOptions['signatures'];
  readonly #tracer: Tracer | undefined;
  /** Versions loaded on demand, least recently used first: the first to go when the budget is reached. */
  readonly #fetched = new Set<string>();
  /** On-demand loads in progress, by digest: concurrent evaluations of a new digest pull it once. */
  readonly #pulling = new Map<string, Promise<LoadedPolicy | undefined>>();
  /** Each loaded script's setup, as workers are sent it (one per script object: a script belongs to one policy). */
  readonly #setups = new WeakMap<LoadedScript, ScriptSetup>();
  /** Tells the workers which setups are no longer named (src/worker/entry.ts). */
  readonly #retired = new BroadcastChannel(RETIRED_SETUPS_CHANNEL).unref();

  constructor(options: EngineOptions = {}) {
    this.#observers = options.observers ?? [];
    this.#documents = new DocumentParser(options.documentParseMs ?? DEFAULTS.documentParseMs);
    this.pool = new ScriptPool({
      ...options,
      onWorkerError: (err) => {
        for (const o of this.#observers) o.workerFailed?.(err);
      },
    });
    this.#options = {
      defaultTimeoutMs: options.defaultTimeoutMs ?? DEFAULTS.timeoutMs,
      maxTimeoutMs: options.maxTimeoutMs ?? DEFAULTS.maxTimeoutMs,
      memoryLimitBytes: options.memoryLimitBytes ?? DEFAULTS.memoryLimitMb * MiB,
      fileRoot: options.fileRoot,
      allowedHostnames: options.allowedHostnames ?? [],
      guestLogLevel: options.guestLogLevel ?? 'info',
      maxLogEntries: options.maxLogEntries ?? DEFAULTS.maxLogEntries,
      maxOutputBytes: options.maxOutputBytes ?? DEFAULTS.maxOutputMb * MiB,
      maxPolicies: options.maxPolicies ?? DEFAULTS.maxPolicies,
      maxPolicyBytes: options.maxPolicyBytes ?? DEFAULTS.maxPolicyMb * MiB,
      maxConcurrentLoads: options.maxConcurrentLoads ?? DEFAULTS.maxConcurrentLoads,
      maxVarBytes: options.maxVarBytes ?? DEFAULTS.maxVarBytes,
      maxHostCalls: options.maxHostCalls ?? DEFAULTS.maxHostCalls,
      maxViolations: options.maxViolations ?? DEFAULTS.maxViolations,
      http: { ...DEFAULT_HTTP_LIMITS, ...options.http },
      permittedRequestHosts: options.permittedRequestHosts ?? ['*'],
    };
    this.#maxLagMs = options.maxEventLoopLagMs ?? 0;
    this.#lag = this.#maxLagMs > 0 ? new EventLoopLag() : undefined;
    this.#discovery = options.discovery;
    this.#registryClient = options.oci?.client;
    this.#onDemand = (options.oci?.onDemand ?? []).map((r) => parseOciReference(r));
    this.#signatures = options.signatures;
    this.#tracer = options.tracer;
  }

  /** The limits a policy runs under: what it asks for, within the server's bounds. */
  #limits(requested: RequestedLimits = {}): PolicyLimits {
    const o = this.#options;
    const timeoutMs = Math.min(requested.timeoutMs || o.defaultTimeoutMs, o.maxTimeoutMs);
    const memoryBytes = Math.min(requested.maxMemoryBytes || o.memoryLimitBytes, o.memoryLimitBytes);
    return { timeoutMs, memoryLimitPages: Math.max(1, Math.floor(memoryBytes / PAGE_BYTES)) };
  }

  /** Refuses a policy that would take the registry past its budget (a new version of a name replaces the old one). */
  #checkBudget(resolved: ResolvedPolicy, byName: boolean): void {
    const { maxPolicies, maxPolicyBytes } = this.#options;
    // A version loaded by digest only (on demand) sits beside the one its name serves, replacing nothing.
    const replaced = byName ? this.#registry.get(resolved.name) : undefined;
    const others = this.#registry.list().filter((p) => p !== replaced);
    if (!replaced && this.#registry.size >= maxPolicies) {
      throw new PolicydError(
        'POLICY_BUDGET',
        `${maxPolicies} policies are loaded, this daemon's maximum (maxPolicies); unload one first, or raise the limit`,
      );
    }
    const bytes = heldBytes(others) + resolvedBytes(resolved);
    if (bytes > maxPolicyBytes) {
      throw new PolicydError(
        'POLICY_BUDGET',
        `loading "${resolved.name}" would hold ${bytes} bytes of WebAssembly, above this daemon's ${maxPolicyBytes} (maxPolicyBytes); unload policies first, or raise the limit`,
      );
    }
  }

  async load(source: PolicySource, limits?: RequestedLimits, { byName = true }: { byName?: boolean } = {}): Promise<LoadResult> {
    if (this.#loading >= this.#options.maxConcurrentLoads) {
      for (const o of this.#observers) o.loadFailed('OVERLOADED');
      throw new PolicydError('OVERLOADED', `${this.#loading} policy loads are already running (maxConcurrentLoads); retry with backoff`);
    }
    this.#loading++;
    try {
      const client = this.#registryClient;
      const resolved = await resolvePolicy(source, {
        fileRoot: this.#options.fileRoot,
        parseDocument: (bytes, label) => this.#documents.parse(bytes, label),
        pullArtifact: client
          ? (ref) =>
              pullPolicy(client, parseOciReference(ref), {
                maxBytes: this.#options.maxPolicyBytes,
                signatures: this.#signatures !== undefined,
              })
          : undefined,
        signatures: this.#signatures,
        fetchRemote: (url) =>
          fetchDocument(url, {
            ...DEFAULT_REMOTE_FETCH,
            timeoutMs: this.#options.http.requestTimeoutMs,
            allowPrivateNetwork: this.#options.http.allowPrivateNetwork,
          }),
      });
      // What the request, pull or file carried (and any version this replaces) ends up garbage.
      garbage.took(resolvedBytes(resolved));
      if (!byName) this.#makeRoomFor(resolved);
      this.#checkBudget(resolved, byName);
      try {
        const added = await this.#registry.add(resolved, this.#limits(limits), (policy) => this.#probe(policy), { byName });
        // Loaded by name now: no longer a cached on-demand version that may be evicted.
        if (byName) this.#fetched.delete(added.policy.digest);
        return { ...added, replay: resolved.replay };
      } catch (err) {
        throw err instanceof PolicydError ? err.forPolicy(resolved.name) : err;
      }
    } catch (err) {
      for (const o of this.#observers) o.loadFailed(err instanceof PolicydError ? err.reason : 'INTERNAL');
      throw err;
    } finally {
      this.#loading--;
    }
  }

  /** Instantiates every script once in a worker, so a policy that cannot start is refused at load. */
  async #probe(policy: LoadedPolicy): Promise<void> {
    const seen = new Set<string>();
    for (const script of policy.scripts) {
      if (seen.has(script.digest)) continue;
      seen.add(script.digest);
      const signal = AbortSignal.timeout(PROBE_TIMEOUT_MS);
      const outcome = await this.pool
        .run({ input: EMPTY, includeRawOutput: false, allowedHosts: [], probe: true }, this.#setup(policy, script), signal)
        .catch((err: unknown) => {
          throw signal.aborted
            ? new PolicydError(
                'INVALID_MODULE',
                `a script of policy "${policy.name}" did not finish instantiating within ${PROBE_TIMEOUT_MS} ms`,
              )
            : err;
        });
      if (!outcome.ok) {
        throw new PolicydError('INVALID_MODULE', `a script of policy "${policy.name}" cannot be instantiated: ${outcome.error.message}`);
      }
    }
  }

  /** What every evaluation of `script` shares (limits, compiled module), made once per loaded script. */
  #setup(policy: LoadedPolicy, script: LoadedScript): ScriptSetup {
    let setup = this.#setups.get(script);
    if (!setup) {
      const o = this.#options;
      setup = scriptSetup(script.facts, {
        id: `${++setupCount}`,
        instanceKey: `${script.digest}/${script.facts.memoryLimitPages}`,
        policyName: policy.name,
        logLevel: o.guestLogLevel,
        maxOutputBytes: o.maxOutputBytes,
        maxVarBytes: o.maxVarBytes,
        maxLogEntries: o.maxLogEntries,
        maxHostCalls: o.maxHostCalls,
        maxViolations: o.maxViolations,
      });
      this.#setups.set(script, setup);
    }
    return setup;
  }

  /** The registry will not serve `policy` again: the workers may forget its setups. */
  #retire(policy: LoadedPolicy): void {
    const ids = policy.scripts.flatMap((s) => this.#setups.get(s)?.id ?? []);
    if (ids.length > 0) this.#retired.postMessage(ids);
  }

  #report(event: EvaluationEvent): void {
    for (const o of this.#observers) o.evaluated(event);
  }

  /**
   * Why an evaluation arriving now would be refused, if it would — the queue is full, or the event loop
   * is late and no worker is idle — reported to the observers. Asked by the server before it decodes a
   * request (`req` absent: no policy name yet; `admitted`: calls it let through that have not reached
   * the pool yet; src/server/admission.ts), so that refusing costs no decoding, and again by evaluate().
   */
  refusal(req?: EvaluationRequest, admitted = 0): PolicydError | undefined {
    // A late event loop refuses only work that would wait: with a worker idle, refusing it too left the
    // workers idle under overload (accepted goodput fell to a fifth of capacity, bench/RESULTS.md).
    const refused =
      this.#lag && this.#lag.lagMs > this.#maxLagMs && !this.pool.hasIdleWorker(admitted)
        ? new PolicydError(
            'OVERLOADED',
            `the daemon is saturated (event loop ${Math.round(this.#lag.lagMs)} ms late); retry with backoff or add replicas`,
          )
        : this.pool.refusal(admitted);
    if (refused) {
      // Labelled with a loaded policy's name only: a client's arbitrary string must not become a label value.
      const policy = (req && this.#registry.get(req.policy)?.name) ?? UNKNOWN_POLICY;
      this.#report({ policy, outcome: refused.reason, seconds: 0, request: req });
    }
    return refused;
  }

  async evaluate(req: EvaluationRequest): Promise<EvaluationOutcome> {
    const started = performance.now();
    const refused = this.refusal(req);
    if (refused) throw refused;
    const policy = this.#registry.get(req.policy) ?? (await this.#fetchOnDemand(req.policy));
    if (!policy) {
      throw new PolicydError(
        'POLICY_NOT_FOUND',
        this.#onDemand.length > 0 && DIGEST.test(req.policy)
          ? `policy ${req.policy} is not loaded and none of ${this.#onDemand.map(formatOciReference).join(', ')} has it; push it there, or load it with LoadPolicy`
          : `policy "${req.policy}" is not loaded; load it with LoadPolicy (or list loaded ones with ListPolicies)`,
        { policy: req.policy },
      );
    }
    if (this.#fetched.delete(policy.digest)) this.#fetched.add(policy.digest);
    const evaluationId = randomUUID();
    const event = { policy: policy.name, digest: policy.digest, evaluationId, request: req };
    const span = this.#tracer?.startSpan(
      'evaluate',
      { attributes: { 'policyd.policy': policy.name, 'policyd.policy.digest': policy.digest, 'policyd.evaluation_id': evaluationId } },
      req.traceContext,
    );
    try {
      const result = await this.#evaluate(
        policy,
        req,
        started,
        evaluationId,
        span && trace.setSpan(req.traceContext ?? ROOT_CONTEXT, span),
      );
      this.#report({ ...event, outcome: 'ok', seconds: result.durationMs / 1000, result });
      span?.setAttribute('policyd.violations', result.result.violations.length);
      if (span) endSpan(span);
      return result;
    } catch (err) {
      const error = PolicydError.of(err).forPolicy(policy.name);
      this.#report({ ...event, outcome: error.reason, seconds: (performance.now() - started) / 1000, error });
      if (span) endSpan(span, error);
      throw error;
    }
  }

  async #evaluate(
    policy: LoadedPolicy,
    req: EvaluationRequest,
    started: number,
    evaluationId: string,
    traced: Context | undefined,
  ): Promise<EvaluationOutcome> {
    const { material } = req;
    if (!isKnownKind(material.kind)) {
      throw new PolicydError('INVALID_MATERIAL', `material.kind ${material.kind} is not a known MaterialKind (0-42)`);
    }
    if (material.kind === MaterialKind.UNSPECIFIED) {
      throw new PolicydError(
        'INVALID_MATERIAL',
        'material.kind is required: set the Chainloop material type (e.g. MATERIAL_KIND_SBOM_CYCLONEDX_JSON)',
      );
    }
    const scripts = policy.scripts.filter((s) => s.kind === MaterialKind.UNSPECIFIED || s.kind === material.kind);
    const { args, ignored } = computeArgs(policy.inputs, req.args ?? {});
    const outcome = { policy, evaluationId, ignoredArgs: ignored, logs: [] as LogRecord[], raw: [] as EvaluationOutcome['raw'] };
    if (scripts.length === 0) {
      return { ...outcome, result: mergeResults(policy.name, []), durationMs: performance.now() - started };
    }
    // The input is built in the worker (parsing the material's JSON is the main thread's largest share of
    // an evaluation, and with it the main thread limits throughput: docs/design-notes.md), unless it is
    // needed more than once or here afterwards: a batch's shared input, several scripts, raw data.
    const inWorker = scripts.length === 1 && !req.includeRawData;
    const builtHere = req.shared?.input ?? (inWorker ? undefined : evaluableInput(material));
    const input = builtHere ?? workerMaterial(evaluableMaterial(material));
    // What is posted to the worker: the input, or the material (perhaps a copy) to build it from.
    const posted = input instanceof Uint8Array ? input : input.content;
    // The material and what is posted for it. Counted for every policy of a batch too, though built
    // once, and for a copy that is moved to the worker: at worst this thread collects sooner.
    garbage.took(material.content.byteLength + posted.byteLength);
    const argsJson = Object.keys(args).length > 0 ? JSON.stringify(args) : undefined;
    const requested = req.allowedHostnames ?? [];
    if (requested.length > MAX_REQUESTED_HOSTS || requested.some((h) => h.length > MAX_HOST_PATTERN)) {
      throw new PolicydError(
        'INVALID_REQUEST',
        `options.allowed_hostnames takes at most ${MAX_REQUESTED_HOSTS} entries of at most ${MAX_HOST_PATTERN} characters (a DNS name's limit); use globs such as *.example.com`,
      );
    }
    const refused = requested.filter((h) => !matchesHostPattern(h, this.#options.permittedRequestHosts));
    if (refused.length > 0) {
      throw new PolicydError(
        'HOSTNAME_NOT_PERMITTED',
        `allowed_hostnames ${refused.join(', ')} are outside what this server lets requests allow (${this.#options.permittedRequestHosts.join(', ')})`,
      );
    }
    // Read only by scripts that make HTTP calls.
    const allowedHosts = scripts.some((s) => s.facts.usesHttp)
      ? [...BASE_ALLOWED_HOSTNAMES, ...this.#options.allowedHostnames, ...requested]
      : [];

    // The one place the effective timeout is decided: the least of the caller's deadline, the request's
    // timeout and the policy's limit (itself within the server's maximum).
    const timeoutMs = Math.min(
      req.deadlineMs ?? Number.POSITIVE_INFINITY,
      req.timeoutMs || Number.POSITIVE_INFINITY,
      policy.limits.timeoutMs,
    );
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new PolicydError('POLICY_TIMEOUT', timeoutMessage())), timeoutMs);
    // A cancelled evaluation is stopped only if it is still running DEFAULTS.cancelGraceMs later (stopping
    // a running guest costs its worker); one that ends sooner ends as cancelled all the same.
    const cancelled = () => new PolicydError('CANCELLED', 'the client cancelled the evaluation');
    let grace: NodeJS.Timeout | undefined;
    const onCancel = () => {
      grace = setTimeout(() => controller.abort(cancelled()), DEFAULTS.cancelGraceMs);
    };
    req.signal?.addEventListener('abort', onCancel, { once: true });
    try {
      const results: ScriptResult[] = [];
      for (const [i, script] of scripts.entries()) {
        const call = {
          input,
          args: argsJson,
          includeRawOutput: req.includeRawData ?? false,
          allowedHosts,
          timed: traced !== undefined,
        };
        const scriptSpan = traced && this.#tracer!.startSpan('script', { attributes: { 'policyd.script.digest': script.digest } }, traced);
        const scriptContext = scriptSpan && trace.setSpan(traced!, scriptSpan);
        const needsHost = script.facts.usesHttp || (script.facts.usesDiscover && this.#discovery !== undefined);
        const host = needsHost
          ? openHostChannel({
              allowedHosts,
              http: this.#options.http,
              discovery: this.#discovery,
              signal: controller.signal,
              trace: scriptContext && { tracer: this.#tracer!, context: scriptContext },
            })
          : undefined;
        const transfer: TransferListItem[] = host ? [host.channel.port] : [];
        // The last script may take a large buffer (LARGE_INPUT_BYTES) made for this evaluation instead of
        // a copy, when nothing reads it after (never the caller's own, which observers read afterwards,
        // nor an input other evaluations share).
        if (
          i === scripts.length - 1 &&
          posted.byteLength >= LARGE_INPUT_BYTES &&
          !req.includeRawData &&
          !req.shared &&
          posted !== material.content &&
          ownsWholeBuffer(posted)
        )
          transfer.push(posted.buffer as ArrayBuffer);
        let result: ScriptOutcome;
        const submitted = epochMs();
        try {
          result = await this.pool.run({ ...call, host: host?.channel }, this.#setup(policy, script), controller.signal, transfer);
        } catch (err) {
          if (scriptSpan) endSpan(scriptSpan, err);
          throw err;
        } finally {
          host?.close();
        }
        if (scriptSpan) {
          const t = result.timings;
          if (t) {
            recordSpan(this.#tracer!, scriptContext!, 'queue', submitted, t.started);
            recordSpan(this.#tracer!, scriptContext!, 'instantiate', t.started, t.instantiated);
            recordSpan(this.#tracer!, scriptContext!, 'execute', t.instantiated, t.finished);
          }
          endSpan(scriptSpan, result.ok ? undefined : PolicydError.from(result.error));
        }
        outcome.logs.push(...result.logs);
        if (req.signal?.aborted) throw cancelled();
        if (!result.ok) throw PolicydError.from(result.error);
        results.push(result.result);
        if (builtHere && req.includeRawData) outcome.raw.push({ input: builtHere, output: result.output ?? EMPTY });
      }
      return { ...outcome, result: mergeResults(policy.name, results), durationMs: performance.now() - started };
    } finally {
      clearTimeout(timer);
      clearTimeout(grace);
      req.signal?.removeEventListener('abort', onCancel);
    }
  }

  /**
   * Loads the manifest `digest` from the first on-demand repository that has it, by digest only (the
   * version a name serves stays as it is). Every evaluation waiting for the same digest shares one pull.
   */
  #fetchOnDemand(digest: string): Promise<LoadedPolicy | undefined> | undefined {
    if (this.#onDemand.length === 0 || !DIGEST.test(digest)) return undefined;
    let pulling = this.#pulling.get(digest);
    if (!pulling) {
      pulling = (async () => {
        for (const repository of this.#onDemand) {
          try {
            const { policy } = await this.load({ type: 'ref', ref: formatOciReference(atDigest(repository, digest)) }, undefined, {
              byName: false,
            });
            this.#fetched.add(policy.digest);
            return policy;
          } catch (err) {
            if (!(err instanceof PolicydError && err.reason === 'ARTIFACT_NOT_FOUND')) throw err;
          }
        }
        return undefined;
      })().finally(() => this.#pulling.delete(digest));
      this.#pulling.set(digest, pulling);
    }
    return pulling;
  }

  /** Unloads versions fetched on demand, least recently used first, until `resolved` fits the budget. */
  #makeRoomFor(resolved: ResolvedPolicy): void {
    const { maxPolicies, maxPolicyBytes } = this.#options;
    const needed = resolvedBytes(resolved);
    for (const digest of this.#fetched) {
      if (this.#registry.size < maxPolicies && heldBytes(this.#registry.list()) + needed <= maxPolicyBytes) return;
      this.#registry.remove(digest);
      this.#fetched.delete(digest);
    }
  }

  /** A loaded policy by name or digest. */
  policy(ref: string): LoadedPolicy | undefined {
    return this.#registry.get(ref);
  }

  /** Every loaded policy, by name. */
  policies(): LoadedPolicy[] {
    return this.#registry.list();
  }

  get policyCount(): number {
    return this.#registry.size;
  }

  unload(ref: string): LoadedPolicy {
    const policy = this.#registry.remove(ref);
    if (!policy) throw new PolicydError('POLICY_NOT_FOUND', `policy "${ref}" is not loaded`, { policy: ref });
    this.#fetched.delete(policy.digest);
    return policy;
  }

  async close(): Promise<void> {
    this.#retired.close();
    this.#lag?.close();
    this.#discovery?.close();
    await this.#documents.close();
    await this.pool.close();
  }
}
