/**
 * The state directory: every policy loaded through the API, kept on disk so that a daemon restarted
 * after a crash or an OOM kill serves what it served before, without its clients loading it again.
 *
 *   blobs/sha256-<hex>     document and module bytes, content-addressed
 *   policies/<name>.json   one record per name: its digest, limits and self-contained source
 *
 * Every file is written to a temporary name, flushed and renamed into place, so a kill at any moment
 * leaves either the old file or the new one. A restore reads each record, checks every blob against
 * its name, loads the policy again and checks that it has the recorded digest; what fails is logged
 * and skipped, never a reason not to start.
 */
import { randomBytes } from 'node:crypto';
import { sha256 } from '../policies/digest.js';
import { mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { LoadResult, PolicyEngine, RequestedLimits } from '../engine/policy-engine.js';
import { PolicydError, errorMessage } from '../errors/policyd-error.js';
import type { MaterialKind } from '../gen/policyengine/v1/engine_pb.js';
import type { SelfContainedSource } from '../policies/loader.js';
import type { PolicyStore } from '../server/policy-service.js';

type StoredSource =
  | { type: 'document'; document: string; scripts: Record<string, string>; label?: string }
  | { type: 'module'; module: string; name: string; kinds: MaterialKind[] }
  /** An OCI artifact as pulled: its manifest, blobs and signatures, checked again when restored. */
  | { type: 'artifact'; ref: string; manifest: string; blobs: string[]; signatures: string[] };

interface PolicyRecord {
  version: 1;
  name: string;
  digest: string;
  limits: { timeoutMs?: number; maxMemoryBytes?: number };
  source: StoredSource;
}

function blobsOf(source: StoredSource): string[] {
  switch (source.type) {
    case 'module':
      return [source.module];
    case 'artifact':
      return [source.manifest, ...source.blobs, ...source.signatures];
    case 'document':
      return [source.document, ...Object.values(source.scripts)];
  }
}

const blobFile = (digest: string) => digest.replace(':', '-');

export class PolicyState implements PolicyStore {
  readonly #blobs: string;
  readonly #policies: string;
  /** One change at a time: collecting blobs while another save is half done would delete its blobs. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly dir: string,
    private readonly logger: Logger,
  ) {
    this.#blobs = join(dir, 'blobs');
    this.#policies = join(dir, 'policies');
  }

  /** Writes `bytes` to `path` so that `path` is never seen half-written. */
  async #writeAtomically(path: string, bytes: Uint8Array): Promise<void> {
    const temporary = `${path}.tmp-${randomBytes(6).toString('hex')}`;
    const file = await open(temporary, 'w', 0o600);
    try {
      await file.writeFile(bytes);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temporary, path).catch(async (err: unknown) => {
      await rm(temporary, { force: true });
      throw err;
    });
  }

  async #putBlob(bytes: Uint8Array): Promise<string> {
    const digest = sha256(bytes);
    await this.#writeAtomically(join(this.#blobs, blobFile(digest)), bytes);
    return digest;
  }

  async #getBlob(digest: string): Promise<Uint8Array> {
    const bytes = await readFile(join(this.#blobs, blobFile(digest)));
    if (sha256(bytes) !== digest) throw new Error(`blob ${digest} does not have its digest (the file was changed or damaged)`);
    return bytes;
  }

  async #store(source: SelfContainedSource): Promise<StoredSource> {
    if (source.type === 'module')
      return { type: 'module', module: await this.#putBlob(source.bytes), name: source.name, kinds: source.kinds };
    if (source.type === 'artifact') {
      const blobs: string[] = [];
      for (const bytes of Object.values(source.blobs)) blobs.push(await this.#putBlob(bytes));
      const signatures: string[] = [];
      for (const bytes of source.signatures) signatures.push(await this.#putBlob(bytes));
      return { type: 'artifact', ref: source.ref, manifest: await this.#putBlob(source.manifest), blobs, signatures };
    }
    const scripts: Record<string, string> = {};
    for (const [key, bytes] of Object.entries(source.scripts)) scripts[key] = await this.#putBlob(bytes);
    return { type: 'document', document: await this.#putBlob(source.bytes), scripts, label: source.label };
  }

  async #replay(stored: StoredSource): Promise<SelfContainedSource> {
    if (stored.type === 'module')
      return { type: 'module', bytes: await this.#getBlob(stored.module), name: stored.name, kinds: stored.kinds };
    if (stored.type === 'artifact') {
      const blobs: Record<string, Uint8Array> = {};
      for (const digest of stored.blobs) blobs[digest] = await this.#getBlob(digest);
      const signatures = await Promise.all(stored.signatures.map((d) => this.#getBlob(d)));
      return { type: 'artifact', ref: stored.ref, manifest: await this.#getBlob(stored.manifest), blobs, signatures };
    }
    const scripts: Record<string, Uint8Array> = {};
    for (const [key, digest] of Object.entries(stored.scripts)) scripts[key] = await this.#getBlob(digest);
    return { type: 'document', bytes: await this.#getBlob(stored.document), scripts, label: stored.label };
  }

  /**
   * Records a policy just loaded through the API (again, when it was already loaded: a retry after a
   * failed write completes it). A failure is the caller's to see: the policy serves, but would not
   * survive a restart.
   */
  save(loaded: LoadResult, limits: RequestedLimits): Promise<void> {
    return this.#serialized(() => this.#save(loaded, limits));
  }

  #serialized<T>(change: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(change, change);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #save(loaded: LoadResult, limits: RequestedLimits): Promise<void> {
    try {
      await mkdir(this.#blobs, { recursive: true, mode: 0o700 });
      await mkdir(this.#policies, { recursive: true, mode: 0o700 });
      const record: PolicyRecord = {
        version: 1,
        name: loaded.policy.name,
        digest: loaded.policy.digest,
        limits,
        source: await this.#store(loaded.replay),
      };
      await this.#writeAtomically(join(this.#policies, `${record.name}.json`), Buffer.from(JSON.stringify(record)));
      await this.#collect();
    } catch (err) {
      throw new PolicydError(
        'STATE_NOT_SAVED',
        `policy "${loaded.policy.name}" is loaded on this replica but could not be saved to the state directory ${this.dir} (${errorMessage(err)}), so it would not survive a restart; fix the directory and load it again`,
        { policy: loaded.policy.name },
      );
    }
  }

  /** Forgets a policy unloaded through the API (only if the record is of that version). */
  forget(name: string, digest: string): Promise<void> {
    return this.#serialized(() => this.#forget(name, digest));
  }

  async #forget(name: string, digest: string): Promise<void> {
    const record = await this.#read(`${name}.json`).catch(() => undefined);
    if (record?.digest !== digest) return;
    await rm(join(this.#policies, `${name}.json`), { force: true });
    await this.#collect();
  }

  async #read(file: string): Promise<PolicyRecord> {
    const record = JSON.parse(await readFile(join(this.#policies, file), 'utf8')) as PolicyRecord;
    if (record.version !== 1) throw new Error(`unknown record version ${String(record.version)}`);
    return record;
  }

  async #records(): Promise<string[]> {
    const files = await readdir(this.#policies).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? [] : Promise.reject(err)));
    return files.filter((f) => f.endsWith('.json')).sort();
  }

  /** Removes blobs no record refers to, and temporary files a kill left behind. */
  async #collect(): Promise<void> {
    const used = new Set<string>();
    for (const file of await this.#records()) {
      const { source } = await this.#read(file);
      for (const digest of blobsOf(source)) used.add(blobFile(digest));
    }
    for (const file of await readdir(this.#blobs).catch(() => [] as string[])) {
      if (!used.has(file)) await rm(join(this.#blobs, file), { force: true });
    }
  }

  /** Loads every recorded policy again; returns how many came back and how many did not. */
  async restore(engine: PolicyEngine): Promise<{ restored: number; failed: number }> {
    let restored = 0;
    let failed = 0;
    for (const file of await this.#records()) {
      try {
        const record = await this.#read(file);
        const { policy } = await engine.load(await this.#replay(record.source), record.limits);
        if (policy.digest !== record.digest) throw new Error(`loaded as ${policy.digest}, recorded as ${record.digest}`);
        restored++;
        this.logger.info({ policy: policy.name, digest: policy.digest }, 'policy restored from the state directory');
      } catch (err) {
        failed++;
        this.logger.error({ file: join(this.#policies, file), error: errorMessage(err) }, 'policy not restored from the state directory');
      }
    }
    return { restored, failed };
  }
}
