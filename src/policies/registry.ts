import type { MaterialKind } from '../gen/policyengine/v1/engine_pb.js';
import { compilePolicyModule, type ModuleFacts } from '../wasm/inspect.js';
import { PAGE_BYTES } from '../wasm/memory-limit.js';
import type { PolicyInputSpec } from './document.js';
import type { ResolvedPolicy } from './loader.js';

export interface LoadedScript {
  kind: MaterialKind;
  digest: string;
  sizeBytes: number;
  facts: ModuleFacts;
}

export interface PolicyLimits {
  timeoutMs: number;
  memoryLimitPages: number;
}

/** A policy's memory cap in bytes, as the API reports it. */
export function maxMemoryBytes(limits: PolicyLimits): number {
  return limits.memoryLimitPages * PAGE_BYTES;
}

export interface LoadedPolicy {
  name: string;
  digest: string;
  description: string;
  findingType: string;
  inputs: PolicyInputSpec[];
  scripts: LoadedScript[];
  limits: PolicyLimits;
}

export interface AddResult {
  policy: LoadedPolicy;
  alreadyLoaded: boolean;
}

/**
 * Loaded policies, content-addressed: by digest, and by name for the newest version of that name.
 * Each distinct script is compiled once (shared by every policy that holds it) and the compiled
 * module is what workers instantiate.
 */
export class PolicyRegistry {
  readonly #byDigest = new Map<string, LoadedPolicy>();
  readonly #digestByName = new Map<string, string>();
  readonly #modules = new Map<string, Promise<ModuleFacts>>();

  /**
   * `onRetired` is told of every policy object the registry will not serve again: unloaded, replaced
   * by a new version (or the same content under other limits), or never published (its probe failed).
   */
  constructor(private readonly onRetired: (policy: LoadedPolicy) => void = () => {}) {}

  /**
   * Compiles what is new, runs `probe` (a policy is ready only once a worker has instantiated it),
   * then publishes. Identical content already loaded is returned as is.
   */
  async add(
    resolved: ResolvedPolicy,
    limits: PolicyLimits,
    probe: (policy: LoadedPolicy) => Promise<void>,
    { byName = true }: { byName?: boolean } = {},
  ): Promise<AddResult> {
    const existing = this.#byDigest.get(resolved.digest);
    if (
      existing &&
      existing.name === resolved.name &&
      (!byName || this.#digestByName.get(resolved.name) === resolved.digest) &&
      existing.limits.timeoutMs === limits.timeoutMs &&
      existing.limits.memoryLimitPages === limits.memoryLimitPages
    ) {
      return { policy: existing, alreadyLoaded: true };
    }
    const scripts: LoadedScript[] = [];
    for (const script of resolved.scripts) {
      const facts = await this.#compile(script.digest, script.bytes, script.label, limits.memoryLimitPages);
      scripts.push({ kind: script.kind, digest: script.digest, sizeBytes: script.bytes.byteLength, facts });
    }
    const policy: LoadedPolicy = {
      name: resolved.name,
      digest: resolved.digest,
      description: resolved.description,
      findingType: resolved.findingType,
      inputs: resolved.inputs,
      scripts,
      limits,
    };
    try {
      await probe(policy);
    } catch (err) {
      this.#forgetUnusedModules();
      this.onRetired(policy);
      throw err;
    }
    this.#publish(policy, byName);
    return { policy, alreadyLoaded: false };
  }

  /** Compiled modules are keyed by script digest and memory limit (the limit is written into the module). */
  #compile(digest: string, bytes: Uint8Array, label: string, memoryLimitPages: number): Promise<ModuleFacts> {
    const key = `${digest}/${memoryLimitPages}`;
    let facts = this.#modules.get(key);
    if (!facts) {
      facts = compilePolicyModule(bytes, label, memoryLimitPages);
      this.#modules.set(key, facts);
      facts.catch(() => this.#modules.delete(key));
    }
    return facts;
  }

  /** `byName` false: reachable by digest only (a version fetched on demand must not replace the one a name serves). */
  #publish(policy: LoadedPolicy, byName: boolean): void {
    if (!byName) {
      if (!this.#byDigest.has(policy.digest)) this.#byDigest.set(policy.digest, policy);
      else this.onRetired(policy);
      return;
    }
    const previous = this.#digestByName.get(policy.name);
    // A new version of a name replaces the old one; evaluations holding the old object finish on it.
    if (previous !== undefined && previous !== policy.digest) this.#drop(previous);
    const holder = this.#byDigest.get(policy.digest);
    if (holder && holder.name !== policy.name) this.#digestByName.delete(holder.name);
    if (holder && holder !== policy) this.onRetired(holder);
    this.#byDigest.set(policy.digest, policy);
    this.#digestByName.set(policy.name, policy.digest);
    this.#forgetUnusedModules();
  }

  /** By digest ("sha256:…") or by name. */
  get(ref: string): LoadedPolicy | undefined {
    const digest = ref.startsWith('sha256:') ? ref : this.#digestByName.get(ref);
    return digest === undefined ? undefined : this.#byDigest.get(digest);
  }

  remove(ref: string): LoadedPolicy | undefined {
    const policy = this.get(ref);
    if (!policy) return undefined;
    this.#drop(policy.digest);
    if (this.#digestByName.get(policy.name) === policy.digest) this.#digestByName.delete(policy.name);
    this.#forgetUnusedModules();
    return policy;
  }

  #drop(digest: string): void {
    const policy = this.#byDigest.get(digest);
    this.#byDigest.delete(digest);
    if (policy) this.onRetired(policy);
  }

  list(): LoadedPolicy[] {
    return [...this.#byDigest.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  get size(): number {
    return this.#byDigest.size;
  }

  #forgetUnusedModules(): void {
    const used = new Set([...this.#byDigest.values()].flatMap((p) => p.scripts.map((s) => `${s.digest}/${p.limits.memoryLimitPages}`)));
    for (const key of this.#modules.keys()) if (!used.has(key)) this.#modules.delete(key);
  }
}
